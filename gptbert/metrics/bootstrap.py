"""Percentile-bootstrap confidence intervals of any metric, vectorised where the metric allows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gptbert.metrics.classification import (
    _accuracy_cm, _encode, _f1_cm, _mcc_cm, _micro_f1, _weighted_f1, accuracy, macro_f1, mcc,
)
from gptbert.metrics.generation import _rouge1, _rouge2, _rouge_per_example, _rougeL
from gptbert.metrics.registry import METRICS
from gptbert.metrics.squad import _qa_em_per_example, _qa_exact_match, _qa_f1, _qa_f1_per_example

_CM_FAST: dict[Callable[..., float], Callable[[np.ndarray], np.ndarray]] = {
    accuracy: _accuracy_cm,
    macro_f1: lambda cm: _f1_cm(cm, "macro", all_classes=False),
    _micro_f1: lambda cm: _f1_cm(cm, "micro", all_classes=False),
    _weighted_f1: lambda cm: _f1_cm(cm, "weighted", all_classes=False),
    mcc: _mcc_cm,
}

# Metrics that are a scaled mean of per-example scores.
_MEAN_FAST: dict[Callable[..., float], tuple[Callable[[Any, Any], np.ndarray], float]] = {
    _qa_exact_match: (_qa_em_per_example, 100.0),
    _qa_f1: (_qa_f1_per_example, 100.0),
    _rouge1: (lambda r, p: _rouge_per_example(p, r)["rouge1"], 100.0),
    _rouge2: (lambda r, p: _rouge_per_example(p, r)["rouge2"], 100.0),
    _rougeL: (lambda r, p: _rouge_per_example(p, r)["rougeL"], 100.0),
}

_CHUNK_ELEMENTS = 4_000_000


def _take(values: Any, idx: np.ndarray) -> Any:
    if isinstance(values, np.ndarray):
        return values[idx]
    seq = values if isinstance(values, list) else list(values)
    return [seq[i] for i in idx.tolist()]


def bootstrap_ci(
    metric_fn: Callable[[Any, Any], float] | str,
    y_true: Any,
    y_pred: Any,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(point, low, high)``: the metric on all data and a percentile bootstrap interval.

    Examples are resampled with replacement, keeping each (true, predicted) pair together;
    the interval holds the central ``1 - alpha`` of the resampled metric values.
    ``metric_fn`` is called as ``metric_fn(y_true, y_pred)``; pass a ``METRICS`` callable
    or name. Accuracy, the F1 averages and MCC are vectorised over resamples, and SQuAD
    EM/F1 and ROUGE are scored once per example; other callables are re-run on each
    resample. The same ``seed`` gives the same resamples on every path.
    """
    if isinstance(metric_fn, str):
        if metric_fn not in METRICS:
            raise KeyError(f"unknown metric {metric_fn!r}; known: {', '.join(sorted(METRICS))}")
        metric_fn = METRICS[metric_fn]
    if isinstance(n_resamples, bool) or int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if isinstance(y_true, str) or isinstance(y_pred, str):
        raise TypeError("y_true and y_pred must be sequences, not single strings")
    n = len(y_true)
    if n != len(y_pred):
        raise ValueError(f"length mismatch: {n} true values vs {len(y_pred)} predictions")
    if n == 0:
        raise ValueError("empty inputs: need at least one example")
    n_resamples = int(n_resamples)

    point = float(metric_fn(y_true, y_pred))
    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples, dtype=np.float64)
    chunk = max(1, _CHUNK_ELEMENTS // n)

    cm_fn = _CM_FAST.get(metric_fn)
    mean_fn = _MEAN_FAST.get(metric_fn)
    if cm_fn is not None:
        t, p, k, _ = _encode(y_true, y_pred, None)
        codes = t * k + p
        for start in range(0, n_resamples, chunk):
            b = min(chunk, n_resamples - start)
            idx = rng.integers(0, n, size=(b, n))
            flat = codes[idx] + (np.arange(b, dtype=np.int64) * (k * k))[:, None]
            cms = np.bincount(flat.ravel(), minlength=b * k * k).reshape(b, k, k)
            values[start : start + b] = cm_fn(cms)
    elif mean_fn is not None:
        per_example, scale = mean_fn
        scores = per_example(y_true, y_pred)
        for start in range(0, n_resamples, chunk):
            b = min(chunk, n_resamples - start)
            idx = rng.integers(0, n, size=(b, n))
            values[start : start + b] = scale * scores[idx].mean(axis=1)
    else:
        for r in range(n_resamples):
            idx = rng.integers(0, n, size=n)
            values[r] = float(metric_fn(_take(y_true, idx), _take(y_pred, idx)))

    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return point, float(low), float(high)
