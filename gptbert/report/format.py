"""How the report writes numbers for people: sizes in MB / GB, milliseconds with 2-3 significant
digits, durations in s / min / h, parameter counts, quality values with their intervals.

Never scientific notation for a measured quantity (no ``2.411e+04``); ``–`` for a missing value.
The recommender's sentences use :mod:`gptbert.recommend.numbers`; the milliseconds and quality
digits here are the same.
"""

from __future__ import annotations

import math
from typing import Any

from gptbert.recommend.numbers import ms as _ms_digits
from gptbert.recommend.numbers import quality as _quality_digits
from gptbert.results import FRACTION_METRICS, CandidateResult

__all__ = ["MISSING", "fmt_count", "fmt_duration", "fmt_interval", "fmt_mb", "fmt_ms", "fmt_number",
           "fmt_params", "fmt_quality", "fmt_rate", "fmt_value", "missing"]

MISSING = "–"


def missing(x: Any) -> bool:
    """None, or a float that is not finite."""
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def fmt_number(x: Any) -> str:
    """A number with about 3 significant digits and thousands separators; other values as text."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return MISSING if x is None else str(x)
    if missing(x):
        return MISSING
    if isinstance(x, int) or (x.is_integer() and abs(x) < 1e15):
        return f"{int(x):,}"
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    if a >= 1e-3:
        return f"{x:.3g}"
    return f"{x:.1e}"


def fmt_ms(x: float | None, unit: bool = False) -> str:
    """Milliseconds: ``123``, ``12.3``, ``1.23`` (``' ms'`` appended when ``unit``)."""
    if missing(x):
        return MISSING
    assert x is not None
    return _ms_digits(x) + (" ms" if unit else "")


def fmt_mb(x: float | None, unit: bool = True) -> str:
    """A size or memory in MB (MiB): ``0.42 MB``, ``42.5 MB``, ``310 MB``, ``23.5 GB``."""
    if missing(x):
        return MISSING
    assert x is not None
    if x >= 1024:
        text, u = f"{x / 1024:.1f}", "GB"
    elif x >= 100:
        text, u = f"{x:.0f}", "MB"
    elif x >= 1:
        text, u = f"{x:.1f}", "MB"
    else:
        text, u = f"{x:.2f}", "MB"
    return f"{text} {u}" if unit else text


def fmt_duration(seconds: float | None) -> str:
    """``4.2 s``, ``42.1 s``, ``300 s``, ``12.5 min``, ``2.1 h``."""
    if missing(seconds):
        return MISSING
    assert seconds is not None
    if seconds < 100:
        return f"{seconds:.1f} s"
    if seconds < 600:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def fmt_rate(x: float | None, unit: str = "") -> str:
    """Items or tokens per second: ``3,333``, ``140``, ``12.5``."""
    if missing(x):
        return MISSING
    assert x is not None
    text = f"{x:,.0f}" if x >= 100 else fmt_number(float(x))
    return f"{text} {unit}".rstrip()


def fmt_count(n: int | float | None) -> str:
    if missing(n):
        return MISSING
    return f"{int(n):,}"  # type: ignore[arg-type]


def fmt_params(n: int | None) -> str:
    """``4.40M``, ``110M``, ``850k``."""
    if n is None:
        return MISSING
    if n < 1e6:
        return f"{n / 1e3:.0f}k"
    return f"{n / 1e6:.2f}M" if n < 1e8 else f"{n / 1e6:.0f}M"


def fmt_value(value: float, metric: str) -> str:
    """A quality number: 3 decimals for fractions, 2 otherwise."""
    return _quality_digits(value, metric)


def fmt_interval(value: float | None, ci: tuple[float, float] | list[float] | None, metric: str,
                 *, plus_minus: bool = False) -> str:
    """``0.862 [0.840, 0.883]``; with ``plus_minus`` ``0.862 ± 0.022 [0.840, 0.883]``."""
    if missing(value):
        return MISSING
    assert value is not None
    d = 3 if metric in FRACTION_METRICS or abs(value) <= 1 else 2  # the value's digits for all three
    text = f"{value:.{d}f}"
    if ci and not any(missing(v) for v in ci):
        lo, hi = float(ci[0]), float(ci[1])
        if plus_minus:
            text += f" ± {(hi - lo) / 2:.{d}f}"
        text += f" [{lo:.{d}f}, {hi:.{d}f}]"
    return text


def fmt_quality(c: CandidateResult, split: str = "dev", *, plus_minus: bool = True) -> str:
    """``0.842 ± 0.019 [0.823, 0.861]``-style text for a candidate's dev/test quality."""
    q = c.quality
    if q is None:
        return MISSING
    value, ci = (q.dev, q.dev_ci) if split == "dev" else (q.test, q.test_ci)
    return fmt_interval(value, ci, q.metric, plus_minus=plus_minus)
