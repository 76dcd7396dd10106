"""Language-modelling metrics: perplexity and bits per token / character."""

from __future__ import annotations

import math


def _finite_nonneg(value: float, name: str) -> float:
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"{name} is NaN")
    if v < 0:
        raise ValueError(f"{name} must be >= 0 (a negative log-likelihood), got {v}")
    return v


def perplexity(mean_nll: float) -> float:
    """``exp(mean_nll)`` for a mean negative log-likelihood in nats per token (inf on overflow)."""
    v = _finite_nonneg(mean_nll, "mean_nll")
    try:
        return math.exp(v)
    except OverflowError:
        return math.inf


def _bits(total_nll_nats: float, count: int, name: str) -> float:
    v = _finite_nonneg(total_nll_nats, "total_nll_nats")
    if isinstance(count, bool) or int(count) != count or count <= 0:
        raise ValueError(f"{name} must be a positive integer, got {count!r}")
    return v / (int(count) * math.log(2.0))


def bits_per_character(total_nll_nats: float, n_chars: int) -> float:
    """Summed NLL (nats) over a text, converted to bits and divided by its character count."""
    return _bits(total_nll_nats, n_chars, "n_chars")


def bits_per_token(total_nll_nats: float, n_tokens: int) -> float:
    """Summed NLL (nats) converted to bits per token (``log2`` of the perplexity)."""
    return _bits(total_nll_nats, n_tokens, "n_tokens")
