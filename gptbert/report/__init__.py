"""Reports of a comparison: Markdown, self-contained HTML (with plots) and JSON.

``write_reports(comparison, out_dir)`` writes ``report.md``, ``report.html`` and
``results.json``. The table contents are built here once (as rows of strings) and
rendered by ``markdown.py`` and ``html.py``, so both formats always agree.
matplotlib (optional extra ``plots``) is imported only when the HTML plots are drawn.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptbert.results import FRACTION_METRICS, CandidateResult, Comparison, save_results_json

__all__ = [
    "Table",
    "candidate_latency",
    "candidate_table",
    "failed_candidates",
    "flatten",
    "fmt_quality",
    "fmt_value",
    "latency_table",
    "pareto_candidates",
    "pareto_front",
    "recommendation_for",
    "summary_table",
    "write_html",
    "write_markdown",
    "write_reports",
]


def pareto_front(points: Sequence[tuple[float | None, float | None]], maximize_quality: bool = True) -> list[int]:
    """Indices (ascending) of the points on the quality/latency Pareto front.

    Each point is ``(quality, latency)``; lower latency is better, and higher quality
    unless ``maximize_quality`` is False. A point is on the front when no other point
    is at least as good on both axes and strictly better on one, so identical points
    are all on the front. Points with a missing or non-finite coordinate are never on it.
    """
    valid: list[tuple[int, float, float]] = []
    for i, (q, lat) in enumerate(points):
        if q is None or lat is None or not math.isfinite(q) or not math.isfinite(lat):
            continue
        valid.append((i, q if maximize_quality else -q, lat))
    front = []
    for i, q, lat in valid:
        dominated = any(
            q2 >= q and l2 <= lat and (q2 > q or l2 < lat) for j, q2, l2 in valid if j != i
        )
        if not dominated:
            front.append(i)
    return front


# --------------------------------------------------------------------------- shared helpers


@dataclass
class Table:
    """A titled table of pre-formatted cells."""

    title: str
    headers: list[str]
    rows: list[list[str]]


def _f(x: float | None, digits: int = 1, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:,.{digits}f}{unit}"


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return _f(x, 0 if x >= 100 else (1 if x >= 10 else 2))


def _params(n: int | None) -> str:
    if n is None:
        return "–"
    return f"{n / 1e6:.2f}M" if n < 1e8 else f"{n / 1e6:.0f}M"


def fmt_value(value: float, metric: str) -> str:
    """A quality number: 3 decimals for fractions, 2 otherwise."""
    return f"{value:.3f}" if metric in FRACTION_METRICS or abs(value) <= 1 else f"{value:.2f}"


def fmt_quality(c: CandidateResult, split: str = "dev") -> str:
    """``0.842 ± 0.019 [0.823, 0.861]``-style text for a candidate's dev/test quality."""
    q = c.quality
    if q is None:
        return "–"
    value, ci = (q.dev, q.dev_ci) if split == "dev" else (q.test, q.test_ci)
    if value is None:
        return "–"
    digits = 3 if q.metric in FRACTION_METRICS or abs(value) <= 1 else 2
    text = f"{value:.{digits}f}"
    if ci:
        half = (ci[1] - ci[0]) / 2
        text += f" ± {half:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return text


def candidate_latency(c: CandidateResult) -> tuple[float | None, str | None]:
    """(p95 ms, precision) at the candidate's fastest measured precision."""
    if not c.latency:
        return None, None
    prec = min(c.latency, key=lambda p: c.latency[p].p95_ms)
    return c.latency[prec].p95_ms, prec


def _metric_name(comparison: Comparison) -> str:
    for c in comparison.candidates:
        if c.quality is not None:
            return c.quality.metric
    return "quality"


def pareto_candidates(comparison: Comparison) -> list[CandidateResult]:
    """Successful candidates on the dev-quality vs fastest-p95 Pareto front."""
    ok = [c for c in comparison.candidates if c.ok and c.quality is not None]
    maximize = all(c.quality.higher_is_better for c in ok)  # type: ignore[union-attr]
    points = [(c.quality.value, candidate_latency(c)[0]) for c in ok]  # type: ignore[union-attr]
    return [ok[i] for i in pareto_front(points, maximize_quality=maximize)]


def failed_candidates(comparison: Comparison) -> list[CandidateResult]:
    return [c for c in comparison.candidates if not c.ok]


def summary_table(comparison: Comparison) -> Table:
    metric = _metric_name(comparison)
    front = {c.name for c in pareto_candidates(comparison)}
    rows = []
    for c in comparison.candidates:
        p95, prec = candidate_latency(c)
        rows.append([
            c.name + (" ★" if c.name in front else ""),
            c.family,
            c.status,
            fmt_quality(c),
            _params(c.n_params),
            _f(c.size_mb.get("fp32")),
            f"{_ms(p95)} ({prec})" if prec else "–",
            _f(c.peak_rss_mb.get("inference"), 0),
        ])
    headers = ["candidate", "family", "status", f"{metric} (dev, 95% CI)", "params", "fp32 MB",
               "p95 ms, bs1 (fastest)", "infer RSS MB"]
    return Table("Summary (★ = on the quality/latency Pareto front)", headers, rows)


def _train_cells(stats: Any) -> tuple[str, str, str]:
    if stats is None:
        return "–", "–", "–"
    return _f(stats.wall_s, 1, " s"), _f(stats.tokens_per_s, 0), _f(stats.final_loss, 3)


def candidate_table(c: CandidateResult) -> Table:
    """Every measured number of one candidate, as (field, value) rows."""
    rows: list[list[str]] = [["family / source", f"{c.family} / {c.source or '–'}"], ["status", c.status]]
    metric = c.quality.metric if c.quality else "quality"
    rows.append([f"{metric} dev (95% CI)", fmt_quality(c, "dev")])
    if c.quality is not None and c.quality.test is not None:
        rows.append([f"{metric} test (95% CI)", fmt_quality(c, "test")])
    rows.append(["parameters (non-embedding)", f"{_params(c.n_params)} ({_params(c.n_params_non_embedding)})"])
    rows.append(["size MB fp32 / bf16 / int8",
                 " / ".join(_f(c.size_mb.get(p)) for p in ("fp32", "bf16", "int8"))])
    for label, stats in (("pre-training", c.pretrain), ("fine-tuning", c.finetune)):
        if stats is None:
            rows.append([label, "–"])
            continue
        wall, tps, loss = _train_cells(stats)
        text = f"{wall}, {tps} tokens/s, {_f(stats.tokens, 0)} tokens, {_f(stats.steps, 0)} steps, final loss {loss}"
        if stats.best_metric is not None:
            text += f", best {metric} {stats.best_metric:.4g}"
        if stats.stop_reason:
            text += f", stopped: {stats.stop_reason}"
        rows.append([label, text])
    for prec, lat in c.latency.items():
        rows.append([f"latency bs1 {prec}", f"p50 {_ms(lat.p50_ms)} ms, p95 {_ms(lat.p95_ms)} ms, "
                                            f"mean {_ms(lat.mean_ms)} ms (n={lat.n})"])
    for prec, tp in c.throughput.items():
        rows.append([f"throughput bs32 {prec}", f"{_f(tp, 1)} items/s"])
    rows.append(["peak RSS MB train / inference",
                 f"{_f(c.peak_rss_mb.get('train'), 0)} / {_f(c.peak_rss_mb.get('inference'), 0)}"])
    rows.append(["decode tokens/s", _f(c.decode_tokens_per_s, 1) if c.can_generate else "n/a (cannot generate)"])
    if c.error:
        rows.append(["error", c.error])
    for key, value in flatten(c.extra).items():
        rows.append([f"extra.{key}", value])
    return Table(c.name, ["field", "value"], rows)


def latency_table(comparison: Comparison) -> Table:
    precisions = list(dict.fromkeys(
        list(comparison.precisions) + [p for c in comparison.candidates for p in c.latency]
    ))
    headers = ["candidate"]
    for p in precisions:
        headers += [f"{p} p50 ms", f"{p} p95 ms", f"{p} bs32 items/s"]
    rows = []
    for c in comparison.candidates:
        row = [c.name]
        for p in precisions:
            lat = c.latency.get(p)
            row += [_ms(lat.p50_ms if lat else None), _ms(lat.p95_ms if lat else None),
                    _f(c.throughput.get(p), 1)]
        rows.append(row)
    return Table("Latency (batch 1) and throughput (batch 32) by precision", headers, rows)


def training_table(comparison: Comparison) -> Table:
    rows = []
    for c in comparison.candidates:
        pw, ptps, _ = _train_cells(c.pretrain)
        fw, ftps, _ = _train_cells(c.finetune)
        rows.append([c.name, pw, ptps, fw, ftps, _f(c.peak_rss_mb.get("train"), 0),
                     _f(c.decode_tokens_per_s, 1) if c.can_generate else "n/a"])
    headers = ["candidate", "pretrain wall", "pretrain tok/s", "finetune wall", "finetune tok/s",
               "train RSS MB", "decode tok/s"]
    return Table("Training cost and generation speed", headers, rows)


def size_table(comparison: Comparison) -> Table:
    rows = [[c.name, _params(c.n_params), _params(c.n_params_non_embedding)]
            + [_f(c.size_mb.get(p)) for p in ("fp32", "bf16", "int8")] for c in comparison.candidates]
    return Table("Size", ["candidate", "params", "non-embedding", "fp32 MB", "bf16 MB", "int8 MB"], rows)


def flatten(data: Mapping[str, Any] | None, prefix: str = "", max_items: int = 20) -> dict[str, str]:
    """Nested dict -> {'a.b': 'value'} strings for key/value tables (long lists shortened)."""
    out: dict[str, str] = {}
    if not data:
        return out
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if len(value) > max_items and all(not isinstance(v, Mapping) for v in value.values()):
                items = list(value.items())[:max_items]
                out[name] = ", ".join(f"{k}: {_cell(v)}" for k, v in items) + f", … ({len(value)} in all)"
            else:
                out.update(flatten(value, name + ".", max_items))
        else:
            out[name] = _cell(value, max_items)
    return out


def _cell(value: Any, max_items: int = 20) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(_cell(v) for v in value[:max_items])
        return f"[{shown}{', …' if len(value) > max_items else ''}]"
    if value is None:
        return "–"
    return str(value)


def hardware_table(hardware: Mapping[str, Any]) -> Table:
    hw = dict(hardware)
    flags = hw.pop("cpu_flags", None)
    rows = [[k, v] for k, v in flatten(hw).items()]
    if isinstance(flags, Mapping):
        present = [k for k, v in flags.items() if v]
        rows.append(["cpu_flags", ", ".join(present) if present else "none of " + ", ".join(flags)])
    return Table("Hardware", ["key", "value"], rows)


def profile_table(profile: Mapping[str, Any]) -> Table:
    return Table("Data profile", ["key", "value"], [[k, v] for k, v in flatten(profile).items()])


def run_table(comparison: Comparison) -> Table:
    rows = [["id", comparison.id], ["created", comparison.created_at], ["task", comparison.task],
            ["gptbert", comparison.version], ["budget", comparison.budget or "–"],
            ["precisions", ", ".join(comparison.precisions) or "–"]]
    for split in ("train", "dev", "test"):
        if comparison.data.get(split):
            rows.append([f"data.{split}", str(comparison.data[split])])
    return Table("Run", ["key", "value"], rows)


def recommendation_for(comparison: Comparison, constraints: Any = None) -> Any:
    """The :class:`gptbert.recommend.Recommendation` for a comparison (default: no limits)."""
    from gptbert.recommend import recommend

    return recommend(comparison.candidates, constraints, hardware=comparison.hardware or None)


# --------------------------------------------------------------------------- writers


def write_markdown(comparison: Comparison, path: str | os.PathLike[str], constraints: Any = None) -> Path:
    from gptbert.report.markdown import write_markdown as _write

    return _write(comparison, path, constraints)


def write_html(comparison: Comparison, path: str | os.PathLike[str], constraints: Any = None) -> Path:
    from gptbert.report.html import write_html as _write

    return _write(comparison, path, constraints)


def write_reports(comparison: Comparison, out_dir: str | os.PathLike[str], constraints: Any = None) -> dict[str, Path]:
    """Write report.md, report.html and results.json into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "json": save_results_json(comparison, out / "results.json"),
        "markdown": write_markdown(comparison, out / "report.md", constraints),
        "html": write_html(comparison, out / "report.html", constraints),
    }
