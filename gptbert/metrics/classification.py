"""Classification metrics: confusion matrix, accuracy, F1 averages, MCC, a per-label report.

Pure numpy; labels may be ints or strings (encoded together). The confusion-matrix forms
(``*_cm``) are shared with the vectorised bootstrap (:mod:`gptbert.metrics.bootstrap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

Average = Literal["macro", "micro", "weighted"]


def _as_1d(values: Any, name: str) -> np.ndarray:
    if isinstance(values, str):
        raise TypeError(f"{name} must be a sequence of labels, not a single string")
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = _as_1d(y_true, "y_true")
    p = _as_1d(y_pred, "y_pred")
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"length mismatch: {t.shape[0]} true labels vs {p.shape[0]} predictions")
    if t.shape[0] == 0:
        raise ValueError("empty inputs: need at least one example")
    return t, p


def _to_int_labels(arr: np.ndarray, name: str) -> np.ndarray | None:
    """Integer view of ``arr`` if it holds integer labels (bool/int/integral float), else None."""
    kind = arr.dtype.kind
    if kind in "biu":
        return arr.astype(np.int64)
    if kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} holds non-integral floats; labels must be integers")
        return arr.astype(np.int64)
    return None


def _encode(
    y_true: Any, y_pred: Any, num_labels: int | None
) -> tuple[np.ndarray, np.ndarray, int, list[Any]]:
    """Validate a label pair and map it to ``0..K-1``; also return K and the label values.

    Integer labels are used as indices (K = ``num_labels`` or the largest label + 1);
    any other hashable labels (e.g. strings) are indexed in sorted order.
    """
    t, p = _check_pair(y_true, y_pred)
    ti, pi = _to_int_labels(t, "y_true"), _to_int_labels(p, "y_pred")
    if ti is not None and pi is not None:
        low = int(min(ti.min(), pi.min()))
        high = int(max(ti.max(), pi.max()))
        if low < 0:
            raise ValueError(f"labels must be non-negative integers, got {low}")
        if num_labels is not None:
            if num_labels < 1:
                raise ValueError(f"num_labels must be >= 1, got {num_labels}")
            if high >= num_labels:
                raise ValueError(f"label {high} out of range for num_labels={num_labels}")
            k = int(num_labels)
        else:
            k = high + 1
        return ti, pi, k, list(range(k))
    if num_labels is not None:
        raise ValueError("num_labels applies to integer labels only")
    try:
        names = sorted(set(t.tolist()) | set(p.tolist()))
    except TypeError as exc:
        raise TypeError("labels must be integers or mutually comparable values") from exc
    index = {name: i for i, name in enumerate(names)}
    ti = np.fromiter((index[x] for x in t.tolist()), dtype=np.int64, count=t.shape[0])
    pi = np.fromiter((index[x] for x in p.tolist()), dtype=np.int64, count=p.shape[0])
    return ti, pi, len(names), names


def _cm_from_codes(t: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def _accuracy_cm(cm: np.ndarray) -> np.ndarray:
    return np.trace(cm, axis1=-2, axis2=-1) / cm.sum(axis=(-2, -1))


def _prf_cm(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1, support and predicted counts of (..., K, K) matrices.

    0/0 is taken as 0 (a class never predicted has precision 0, never seen recall 0).
    """
    cm = cm.astype(np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(axis=-1)
    predicted = cm.sum(axis=-2)
    zeros = np.zeros_like(tp)
    precision = np.divide(tp, predicted, out=zeros.copy(), where=predicted > 0)
    recall = np.divide(tp, support, out=zeros.copy(), where=support > 0)
    both = support + predicted
    f1 = np.divide(2.0 * tp, both, out=zeros.copy(), where=both > 0)
    return precision, recall, f1, support, predicted


def _f1_cm(cm: np.ndarray, average: str, all_classes: bool) -> np.ndarray:
    _, _, f1, support, predicted = _prf_cm(cm)
    if average == "micro":
        # Single-label multi-class: micro precision = micro recall = micro F1 = accuracy.
        return _accuracy_cm(cm)
    if average == "weighted":
        return (f1 * support).sum(axis=-1) / support.sum(axis=-1)
    if average == "macro":
        mask = np.ones_like(f1, dtype=bool) if all_classes else (support + predicted) > 0
        return (f1 * mask).sum(axis=-1) / mask.sum(axis=-1)
    raise ValueError(f"average must be 'macro', 'micro' or 'weighted', got {average!r}")


def _mcc_cm(cm: np.ndarray) -> np.ndarray:
    cm = cm.astype(np.float64)
    s = cm.sum(axis=(-2, -1))
    c = np.trace(cm, axis1=-2, axis2=-1)
    t = cm.sum(axis=-1)
    p = cm.sum(axis=-2)
    num = c * s - (t * p).sum(axis=-1)
    den = np.sqrt((s * s - (p * p).sum(axis=-1)) * (s * s - (t * t).sum(axis=-1)))
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def confusion_matrix(y_true: Any, y_pred: Any, num_labels: int | None = None) -> np.ndarray:
    """Counts ``cm[i, j]`` of examples with true label i predicted as j, shape (K, K), int64.

    Integer labels index the matrix directly (K = ``num_labels``, default largest label + 1);
    other labels (strings) are ordered by ``sorted``.
    """
    t, p, k, _ = _encode(y_true, y_pred, num_labels)
    return _cm_from_codes(t, p, k)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of examples whose prediction equals the label."""
    t, p = _check_pair(y_true, y_pred)
    return float(np.mean(t == p))


def macro_f1(
    y_true: Any, y_pred: Any, average: Average = "macro", num_labels: int | None = None
) -> float:
    """F1 averaged over classes.

    ``average``: ``"macro"`` (unweighted mean of per-class F1), ``"weighted"`` (weighted by
    support) or ``"micro"`` (pooled counts; equals accuracy for single-label data). Macro
    averages over the classes present in ``y_true`` or ``y_pred``, or over all
    ``num_labels`` classes when that is given (absent classes then count as F1 = 0).
    """
    t, p, k, _ = _encode(y_true, y_pred, num_labels)
    return float(_f1_cm(_cm_from_codes(t, p, k), average, all_classes=num_labels is not None))


def mcc(y_true: Any, y_pred: Any) -> float:
    """Matthews correlation coefficient, multi-class (Gorodkin's R_K), in [-1, 1].

    ``(c*s - sum_k t_k p_k) / sqrt((s^2 - sum_k p_k^2) (s^2 - sum_k t_k^2))`` with s
    examples, c correct, t_k true and p_k predicted counts of class k; 0.0 when the
    denominator is 0 (only one class in ``y_true`` or in ``y_pred``).
    """
    t, p, k, _ = _encode(y_true, y_pred, None)
    return float(_mcc_cm(_cm_from_codes(t, p, k)))


def classification_report(
    y_true: Any,
    y_pred: Any,
    num_labels: int | None = None,
    target_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Per-class ``{"precision", "recall", "f1", "support"}`` plus summary entries.

    Keys are ``target_names[i]`` (or ``str(label)``) for each class, then ``"accuracy"``
    (a float), ``"macro avg"`` and ``"weighted avg"`` (dicts like the per-class ones,
    ``support`` being the number of examples). Classes listed: all ``num_labels`` when
    given, else those present in ``y_true`` or ``y_pred``; macro averages over them.
    """
    t, p, k, names = _encode(y_true, y_pred, num_labels)
    cm = _cm_from_codes(t, p, k)
    precision, recall, f1, support, predicted = _prf_cm(cm)
    if num_labels is not None:
        classes = list(range(k))
    else:
        classes = [i for i in range(k) if support[i] + predicted[i] > 0]
    if target_names is not None:
        if isinstance(target_names, str) or len(target_names) != k:
            raise ValueError(f"target_names must list {k} names, one per label")
        labels = [str(target_names[i]) for i in range(k)]
    else:
        labels = [str(name) for name in names]
    if len(set(labels[i] for i in classes)) != len(classes):
        raise ValueError("class names must be distinct")
    report: dict[str, Any] = {}
    for i in classes:
        report[labels[i]] = {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
    n = int(cm.sum())
    idx = np.asarray(classes, dtype=np.int64)
    report["accuracy"] = float(_accuracy_cm(cm))
    report["macro avg"] = {
        "precision": float(precision[idx].mean()),
        "recall": float(recall[idx].mean()),
        "f1": float(f1[idx].mean()),
        "support": n,
    }
    weights = support / n
    report["weighted avg"] = {
        "precision": float((precision * weights).sum()),
        "recall": float((recall * weights).sum()),
        "f1": float((f1 * weights).sum()),
        "support": n,
    }
    return report




def _micro_f1(y_true: Any, y_pred: Any) -> float:
    return macro_f1(y_true, y_pred, average="micro")


def _weighted_f1(y_true: Any, y_pred: Any) -> float:
    return macro_f1(y_true, y_pred, average="weighted")
