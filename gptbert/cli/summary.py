"""The short human summary a command prints when it is done (``--json`` prints the data instead).

One headline saying what was done, aligned ``label  value`` lines, and where the result is::

    compressed runs/sst2-minilm with int8-dynamic in 14s
      size on disk        87.1 -> 22.4 MB (3.9x smaller)
      latency, batch 1    p50 12.3 -> 6.10 ms (2.0x faster); p95 15.1 -> 7.02 ms (2.2x faster)
      dev accuracy        0.815 -> 0.810 (872 rows; 0.5 points lower)
    run: runs/minilm-int8

    print(format_run_summary("compressed ...", [("size on disk", before_after(87.1, 22.4, "MB", ...))],
                             run_dir="runs/minilm-int8"))

``gptbert pretrain`` / ``finetune`` print theirs the same way::

    format_run_summary(f"fine-tuned {model} on {train} ({task})",
                       [("training", steps_text(result.steps, result.wall_time, result.stop_reason)),
                        ("dev accuracy", quality_text(dev["accuracy"], dev["n"]))], run_dir=path)

Numbers are written as the recommender writes them (:mod:`gptbert.recommend.numbers`); a ratio
that rounds to 1.0 says "about the same", never "1.0x faster".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["before_after", "format_run_summary", "quality_text", "rows_text", "steps_text"]

_CHANGE_WORDS = {"size": ("larger", "smaller"), "latency": ("slower", "faster"), "rate": ("more", "less")}
"""What a value that went up / down is called, per kind of figure."""


def rows_text(n: int) -> str:
    return f"{n:,} row{'s' if n != 1 else ''}"


def quality_text(value: float | None, rows: int | None, metric: str = "accuracy") -> str:
    """``'0.815 (872 rows)'``: a quality figure always says how many rows it was scored on."""
    from gptbert.recommend.numbers import quality

    if value is None:
        return "not measured"
    return quality(value, metric) + ("" if rows is None else f" ({rows_text(rows)})")


def _number(x: float, unit: str) -> str:
    from gptbert.recommend.numbers import mb, ms

    if unit == "ms":
        return ms(x)
    if unit == "MB":
        return mb(x)
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def before_after(before: float | None, after: float | None, unit: str, *, kind: str = "size") -> str:
    """``'87.1 -> 22.4 MB (3.9x smaller)'``. ``kind``: 'size' (larger / smaller), 'latency'
    (slower / faster) or 'rate' (more / less); a ratio that rounds to 1 is "about the same"."""
    from gptbert.recommend.numbers import ratio

    if before is None or after is None:
        known = after if after is not None else before
        return "not measured" if known is None else f"{_number(known, unit)} {unit}"
    text = f"{_number(before, unit)} -> {_number(after, unit)} {unit}"
    up, down = _CHANGE_WORDS[kind]
    r = ratio(max(before, after), min(before, after))
    return f"{text} ({'about the same' if r is None else f'{r} {up if after > before else down}'})"


def steps_text(steps: int, seconds: float, stop_reason: str | None = None) -> str:
    """``'1,234 steps in 5m02s (stopped: time budget)'``."""
    from gptbert.training.args import format_duration

    stop = f" (stopped: {stop_reason.replace('_', ' ')})" if stop_reason else ""
    return f"{steps:,} step{'s' if steps != 1 else ''} in {format_duration(seconds)}{stop}"


def format_run_summary(headline: str, facts: Sequence[tuple[str, str | None]], *,
                       run_dir: str | Path | None = None, notes: Sequence[str] = ()) -> str:
    """``headline``, then one aligned line per ``(label, value)`` (a None value is left out), then
    ``notes`` and ``run: <run_dir>``."""
    shown = [(label, value) for label, value in facts if value is not None]
    width = max((len(label) for label, _ in shown), default=0)
    lines = [headline, *(f"  {label.ljust(width)}  {value}" for label, value in shown), *notes]
    if run_dir is not None:
        lines.append(f"run: {run_dir}")
    return "\n".join(lines)
