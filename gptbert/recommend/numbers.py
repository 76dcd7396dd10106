"""How the recommender writes numbers: milliseconds, megabytes, quality values, limits, gaps and ratios.

A ratio that rounds to 1.0 is never called faster or slower: :func:`ratio` gives two
decimals below 1.1 and ``None`` (say "about the same") when even those round to 1.00.
"""

from __future__ import annotations

from gptbert.results import FRACTION_METRICS

__all__ = ["LOWER_IS_BETTER_UNITS", "gap", "gap_is_zero", "limit", "mb", "ms", "quality", "ratio"]

LOWER_IS_BETTER_UNITS = ("perplexity", "bits_per_character", "bits_per_token", "loss")
"""Metrics whose differences are written in their own unit (``2.31 perplexity``), not in points."""


def ms(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else (f"{x:.1f}" if x >= 10 else f"{x:.2f}")


def mb(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def quality(x: float, metric: str) -> str:
    return f"{x:.3f}" if metric in FRACTION_METRICS or abs(x) <= 1.0 else f"{x:.2f}"


def limit(x: float) -> str:
    return f"{x:g}"


def gap(better: float, worse: float, metric: str) -> str:
    """Size of a quality difference in words: points for fractions/percentages."""
    d = abs(better - worse)
    if metric in FRACTION_METRICS:
        return f"{d * 100:.1f} points"
    if metric in LOWER_IS_BETTER_UNITS:
        return f"{d:.2f} {metric}"
    return f"{d:.1f} points" if d >= 0.1 else f"{d:.3f}"


def gap_is_zero(a: float, b: float, metric: str) -> bool:
    """True when the difference of ``a`` and ``b`` prints as zero (say "about the same")."""
    return float(gap(a, b, metric).split()[0]) == 0.0


def ratio(a: float, b: float) -> str | None:
    """``a / b`` (>= 1) as ``'3.1x'``, ``'1.04x'`` below 1.1, or None when it rounds to 1.00x."""
    if b <= 0:
        return None if a <= 0 else "many times"
    r = a / b
    if round(r, 2) <= 1.0:
        return None
    return f"{r:.1f}x" if round(r, 1) >= 1.1 else f"{r:.2f}x"
