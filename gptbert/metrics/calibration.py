"""Calibration: how far a classifier's confidence can be trusted, and temperature scaling.

* :func:`expected_calibration_error` (ECE, Guo et al. 2017): the top-label confidence of each
  example is put in one of ``n_bins`` equal-width bins (15 by default); ECE is the mean over
  bins of |accuracy - mean confidence|, weighted by the share of examples in the bin. 0 for a
  perfectly calibrated model; an over-confident one that is right 70 % of the time at 99 %
  confidence scores about 0.29.
* :func:`brier_score`: the mean squared distance between the probability vector and the one-hot
  label (0 is perfect; 2 is the worst possible).
* :func:`fit_temperature`: the single temperature T > 0 minimising the negative log-likelihood
  of ``softmax(logits / T)`` on held-out data (a 1-D convex problem in log T, solved by golden
  section search). Accuracy is unchanged; confidence is rescaled.

numpy only; probabilities (N, L) and label ids (N,).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

N_BINS = 15


def _check(probs: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(y, dtype=np.int64).reshape(-1)
    if p.ndim != 2 or p.shape[0] != t.shape[0] or p.shape[0] == 0:
        raise ValueError(f"calibration: expected probabilities (N, L) and N labels, got {p.shape} and {t.shape}")
    if t.min() < 0 or t.max() >= p.shape[1]:
        raise ValueError(f"calibration: labels must be in 0..{p.shape[1] - 1}")
    return p, t


def reliability_bins(probs: Any, y: Any, n_bins: int = N_BINS) -> list[dict[str, float]]:
    """Per confidence bin: ``low``, ``high``, ``count``, mean ``confidence`` and ``accuracy`` (empty bins kept, count 0)."""
    p, t = _check(probs, y)
    conf = p.max(axis=1)
    right = (p.argmax(axis=1) == t).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)  # (lo, hi] bins, 0 in the first
    out = []
    for b in range(n_bins):
        mask = which == b
        n = int(mask.sum())
        out.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": n,
                    "confidence": float(conf[mask].mean()) if n else 0.0,
                    "accuracy": float(right[mask].mean()) if n else 0.0})
    return out


def expected_calibration_error(probs: Any, y: Any, n_bins: int = N_BINS) -> float:
    """ECE over ``n_bins`` equal-width confidence bins (see the module docstring)."""
    bins = reliability_bins(probs, y, n_bins)
    total = sum(b["count"] for b in bins)
    return float(sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in bins))


def brier_score(probs: Any, y: Any) -> float:
    """Multi-class Brier score: mean of sum_k (p_k - [k == y])^2."""
    p, t = _check(probs, y)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(t)), t] = 1.0
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: Any, y: Any, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    t = np.asarray(y, dtype=np.int64).reshape(-1)
    zmax = z.max(axis=1, keepdims=True)
    log_norm = (zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1)))
    return float((log_norm - z[np.arange(len(t)), t]).mean())


def fit_temperature(logits: Any, y: Any, *, low: float = 0.05, high: float = 20.0, iters: int = 60) -> float:
    """The temperature minimising :func:`nll` on (logits (N, L), labels (N,)), within [low, high]."""
    _check(logits, y)
    a, b = math.log(low), math.log(high)
    g = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(logits, y, math.exp(c)), nll(logits, y, math.exp(d))
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(logits, y, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(logits, y, math.exp(d))
    return float(math.exp((a + b) / 2.0))
