"""The human summary of a finished command (gptbert.cli.summary)."""

from __future__ import annotations

from gptbert.cli.summary import before_after, format_run_summary, quality_text, rows_text, steps_text


def test_quality_says_how_many_rows():
    assert quality_text(0.8153, 872) == "0.815 (872 rows)"
    assert quality_text(0.5, 1) == "0.500 (1 row)"
    assert quality_text(12.345, 1_000, metric="perplexity") == "12.35 (1,000 rows)"
    assert quality_text(None, 872) == "not measured"
    assert rows_text(12_000) == "12,000 rows"


def test_before_after_names_the_direction_and_never_says_1x():
    assert before_after(87.1, 22.4, "MB") == "87.1 -> 22.4 MB (3.9x smaller)"
    assert before_after(10.0, 5.0, "ms", kind="latency") == "10.0 -> 5.00 ms (2.0x faster)"
    assert before_after(5.0, 5.2, "ms", kind="latency") == "5.00 -> 5.20 ms (1.04x slower)"
    assert before_after(640.0, 707.0, "items/s", kind="rate") == "640 -> 707 items/s (1.1x more)"
    assert before_after(2.0, 2.001, "MB") == "2.0 -> 2.0 MB (about the same)"
    assert before_after(None, 3.0, "MB") == "3.0 MB" and before_after(None, None, "MB") == "not measured"


def test_steps_text():
    assert steps_text(1234, 302.4, "time_budget") == "1,234 steps in 5m02s (stopped: time budget)"
    assert steps_text(1, 3.0) == "1 step in 3s"


def test_format_run_summary_aligns_and_leaves_out_unknowns():
    text = format_run_summary("fine-tuned bert-mini on train.tsv (classify)",
                              [("training", "10 steps in 3s"), ("best dev accuracy", None),
                               ("dev accuracy", "0.815 (872 rows)")], run_dir="runs/x", notes=["a note"])
    assert text.splitlines() == ["fine-tuned bert-mini on train.tsv (classify)",
                                 "  training      10 steps in 3s",
                                 "  dev accuracy  0.815 (872 rows)",
                                 "a note",
                                 "run: runs/x"]
