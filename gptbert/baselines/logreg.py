"""Multinomial logistic regression with C picked on a held-out slice of train, inside a time budget.

Shared by both baselines (:mod:`gptbert.baselines.tfidf`, :mod:`gptbert.baselines.embed`):
scikit-learn's ``LogisticRegression`` (lbfgs, L2) is fitted on 90 % of train for each C of a
small grid, scored on the other 10 % (a seeded, per-label split), and refitted on all of train
with the best C. Every fit starts from zero: warm-starting from the previous C's solution
made the search blind -- lbfgs' stopping test (on the gradient of the per-example mean loss)
was already met, so on SST-2 TF-IDF features C=30, 3 and 100 "fitted" in 0.15 s each and
scored exactly as C=10 on the held-out slice.

The grid is tried in the order given, the usual best first: C=10 was the best on banking77
TF-IDF dev (C=3/10/30/100: 0.903/0.910/0.909/0.906, min_df 2); C=1 was the worst on the
held-out slices of banking77, SNIPS and SST-2 alike and is not tried. Before
each further C the search checks that one more fit plus the final refit (their durations
estimated from the last fit) still end inside ``budget_s``; at least one C is always fitted.

The fit runs on ``threads`` BLAS / OpenMP threads (default 1): lbfgs' own step and scipy's
sparse products are single-threaded anyway, and on the shared 2-core machine (load 4-6) a
banking77 TF-IDF fit took 16-20 CPU-s and 23-47 s with one thread, 29-30 CPU-s and 48-49 s
with two (spinning OpenMP threads).

The result is in softmax form -- ``coef`` (L, F), ``intercept`` (L,), probabilities =
softmax(X @ coef.T + intercept) -- also for two labels, where scikit-learn keeps one weight
vector w (P(1) = sigmoid(w.x + b)) and we store [-w/2, w/2]: the same probabilities, and the
form a gptbert classifier head takes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

C_GRID = (10.0, 30.0, 3.0, 100.0)
"""C values in the order they are tried (see the module docstring)."""
HELDOUT_FRACTION = 0.1
MAX_ITER = 1000


@dataclass
class CSearch:
    """What the C search did: the record a run keeps."""

    grid: list[float]
    C: float
    """The C refitted on all of train."""
    heldout_accuracy: dict[str, float] = field(default_factory=dict)
    """Held-out accuracy per C tried (keys are str(C), in the order tried)."""
    fit_seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each held-out fit."""
    heldout_size: int = 0
    budget_s: float | None = None
    stopped_by_budget: bool = False
    refit_seconds: float = 0.0
    total_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CSearch":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class LogRegFit:
    """A fitted probe: softmax weights, the C search, and scikit-learn's estimator (refitted on all)."""

    coef: np.ndarray
    """(L, F) float32"""
    intercept: np.ndarray
    """(L,) float32"""
    search: CSearch
    estimator: Any
    """The ``LogisticRegression``: ``estimator.predict_proba(X)`` = softmax(X @ coef.T + intercept)."""


def heldout_split(y: np.ndarray, fraction: float = HELDOUT_FRACTION, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit indices, held-out indices): ``fraction`` of every label held out (at least one of a
    label with two or more examples; a label seen once stays in the fit part), seeded."""
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        if len(idx) < 2:
            continue
        k = min(len(idx) - 1, max(1, int(round(fraction * len(idx)))))
        held.append(rng.permutation(idx)[:k])
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[held_idx] = False
    return np.flatnonzero(mask), held_idx


def softmax_form(coef: np.ndarray, intercept: np.ndarray, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's coef_ / intercept_ as (L, F) / (L,) softmax weights (float32)."""
    coef, intercept = np.asarray(coef, dtype=np.float64), np.asarray(intercept, dtype=np.float64)
    if num_labels == 2 and coef.shape[0] == 1:
        coef, intercept = np.concatenate([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    return coef.astype(np.float32), intercept.astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_logreg(
    X: Any, y: np.ndarray, num_labels: int, *, grid: tuple[float, ...] = C_GRID, budget_s: float | None = None,
    seed: int = 0, heldout_fraction: float = HELDOUT_FRACTION, threads: int | None = 1,
) -> LogRegFit:
    """Pick C on a held-out slice of (X (N, F), label ids y (N,)) and refit on all of it.

    Every label 0..num_labels-1 must occur in ``y``. ``threads`` None: the libraries' default.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        return _fit_logreg(X, y, num_labels, grid=grid, budget_s=budget_s, seed=seed,
                           heldout_fraction=heldout_fraction)


def _fit_logreg(X: Any, y: np.ndarray, num_labels: int, *, grid: tuple[float, ...], budget_s: float | None,
                seed: int, heldout_fraction: float) -> LogRegFit:
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y)
    if num_labels < 2:
        raise ValueError(f"fit_logreg: a classifier needs at least two labels, got {num_labels}")
    if set(np.unique(y).tolist()) != set(range(num_labels)):
        raise ValueError(f"fit_logreg: every label 0..{num_labels - 1} must occur in the training labels")
    if not grid:
        raise ValueError("fit_logreg: empty C grid")
    start = time.perf_counter()
    fit_idx, held_idx = heldout_split(y, heldout_fraction, seed)
    search = CSearch(grid=[float(c) for c in grid], C=float(grid[0]), heldout_size=int(len(held_idx)),
                     budget_s=budget_s)
    if len(held_idx) and len(np.unique(y[fit_idx])) == num_labels:
        X_fit, y_fit, X_held, y_held = X[fit_idx], y[fit_idx], X[held_idx], y[held_idx]
        refit_scale = len(y) / max(1, len(fit_idx))
        best = -1.0
        for c in grid:
            if search.heldout_accuracy and budget_s is not None:
                last = list(search.fit_seconds.values())[-1]
                if time.perf_counter() - start + last * (1 + refit_scale) > budget_s:
                    search.stopped_by_budget = True
                    break
            t = time.perf_counter()
            lr = LogisticRegression(C=float(c), max_iter=MAX_ITER).fit(X_fit, y_fit)
            search.fit_seconds[str(float(c))] = time.perf_counter() - t
            acc = float(lr.score(X_held, y_held))
            search.heldout_accuracy[str(float(c))] = acc
            if acc > best:
                best, search.C = acc, float(c)
    t = time.perf_counter()
    lr = LogisticRegression(C=search.C, max_iter=MAX_ITER).fit(X, y)
    search.refit_seconds = time.perf_counter() - t
    search.total_seconds = time.perf_counter() - start
    coef, intercept = softmax_form(lr.coef_, lr.intercept_, num_labels)
    return LogRegFit(coef, intercept, search, lr)


def label_ids(labels: Any) -> tuple[list[str], np.ndarray]:
    """(label names in gptbert's order -- numeric labels numerically, others alphabetically --, ids (N,))."""
    from gptbert.data.readers import LabelMap

    label_map = LabelMap.from_labels(labels)
    return list(label_map.labels), np.array([label_map.encode(lab) for lab in labels], dtype=np.int64)


def check_inputs(texts: Any, pairs: Any = None, labels: Any = None) -> None:
    """One-line errors for the usual mistakes: a single str, pairs or labels of another length."""
    if isinstance(texts, str):
        raise TypeError("expected a list of texts, got a single str (wrap it in a list)")
    if pairs is not None and len(pairs) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
    if labels is not None and len(labels) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
