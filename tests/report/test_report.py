"""Pareto front, Markdown and self-contained HTML reports."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from gptbert.report import pareto_candidates, pareto_front, write_html, write_markdown, write_reports
from gptbert.results import load_results_json
from tests.test_results import make_comparison

HAS_MPL = importlib.util.find_spec("matplotlib") is not None


def test_pareto_front_hand_checked():
    # (quality, latency ms)
    points = [
        (0.90, 10.0),  # 0: front (best quality)
        (0.85, 5.0),   # 1: front
        (0.80, 6.0),   # 2: dominated by 1 (worse and slower)
        (0.85, 7.0),   # 3: dominated by 1 (same quality, slower)
        (0.70, 1.0),   # 4: front (fastest)
        (0.90, 12.0),  # 5: dominated by 0 (same quality, slower)
        (None, 0.5),   # 6: missing quality: never on the front
    ]
    assert pareto_front(points) == [0, 1, 4]


def test_pareto_ties_and_direction():
    # Identical points dominate neither each other: both stay.
    assert pareto_front([(0.8, 5.0), (0.8, 5.0), (0.7, 6.0)]) == [0, 1]
    # Lower-is-better quality (perplexity): 20 at 5 ms beats 30 at 6 ms.
    assert pareto_front([(20.0, 5.0), (30.0, 6.0), (40.0, 1.0)], maximize_quality=False) == [0, 2]
    assert pareto_front([]) == []
    assert pareto_front([(float("nan"), 1.0), (0.5, 2.0)]) == [1]


def test_pareto_candidates_of_comparison():
    names = [c.name for c in pareto_candidates(make_comparison())]
    assert names == ["bert-mini", "gpt-mini", "bert-tiny"]  # elmo-small failed


def test_markdown_report(tmp_path):
    comp = make_comparison()
    path = write_markdown(comp, tmp_path / "report.md")
    text = path.read_text()
    assert "## Recommendation" in text and "Recommendation: bert-mini" in text
    assert "0.862 ± 0.022 [0.840, 0.883]" in text
    assert "| bert-mini ★ |" in text and "| elmo-small |" in text
    assert "## Pareto front" in text and "**bert-tiny**" in text
    assert "42.5 / 21.3 / 11.0" in text  # fp32 / bf16 / int8 MB
    assert "p50 5.50 ms, p95 6.50 ms" in text
    assert "RuntimeError: out of memory" in text
    assert "Test CPU" in text and "cpu_flags | avx2" in text
    assert "n_examples | 6,920" in text  # numbers for people: thousands separators, no trailing .0
    assert "300 s" in text and "3,333" in text and "| 140 |" in text


def test_html_report_is_self_contained(tmp_path):
    comp = make_comparison()
    text = write_html(comp, tmp_path / "report.html").read_text()
    assert text.startswith("<!DOCTYPE html>") and "</html>" in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<link" not in text and "<script" not in text
    assert "Recommendation: bert-mini" in text and "0.862 ± 0.022" in text
    assert "RuntimeError: out of memory" in text
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    if HAS_MPL:
        # quality vs latency and vs size, the loss of each phase, dev accuracy while fine-tuning, latency samples
        assert len(images) == 6
        import base64

        assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    else:
        assert not images and "matplotlib" in text


def test_html_without_matplotlib(tmp_path, monkeypatch):
    from gptbert.report import plots

    monkeypatch.setattr(plots, "available", lambda: False)
    text = write_html(make_comparison(), tmp_path / "r.html").read_text()
    assert "data:image/png" not in text and "pip install" in text and "<table>" in text


def test_html_escapes_untrusted_text(tmp_path, monkeypatch):
    from gptbert.report import plots

    monkeypatch.setattr(plots, "available", lambda: False)  # tables only: faster
    comp = make_comparison()
    comp.candidates[3].error = "<script>alert(1)</script>"
    text = write_html(comp, tmp_path / "r.html").read_text()
    assert "<script>alert" not in text and "&lt;script&gt;" in text


@pytest.mark.skipif(not HAS_MPL, reason="matplotlib not installed")
def test_plots_skip_missing_data():
    from gptbert.report import plots

    comp = make_comparison()
    for c in comp.candidates:
        c.curves = []
        c.latency_samples = {}
    figs = plots.all_plots(comp)
    assert [p.title for p in figs] == ["Quality vs latency", "Quality vs size"]


def test_write_reports(tmp_path):
    comp = make_comparison()
    paths = write_reports(comp, tmp_path / "run")
    assert {p.name for p in paths.values()} == {"report.md", "report.html", "results.json"}
    assert load_results_json(paths["json"]) == comp
    json.loads(paths["json"].read_text())
    assert not list((tmp_path / "run").glob(".*tmp"))


def test_report_with_only_failures(tmp_path):
    comp = make_comparison()
    comp.candidates = [c for c in comp.candidates if not c.ok]
    paths = write_reports(comp, tmp_path)
    md = paths["markdown"].read_text()
    assert "No candidate meets the constraints" in md and "elmo-small" in md
    assert "no candidate has both a quality and a latency" in md
