"""ECE, Brier score and temperature scaling on synthetic predictors with known calibration."""

from __future__ import annotations

import numpy as np
import pytest

from gptbert.metrics import brier_score, expected_calibration_error, fit_temperature, reliability_bins
from gptbert.metrics.calibration import nll, softmax


def _calibrated(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes; P(label 1) drawn uniformly, the label drawn with exactly that probability."""
    rng = np.random.default_rng(seed)
    p1 = rng.uniform(0, 1, n)
    y = (rng.uniform(0, 1, n) < p1).astype(int)
    return np.stack([1 - p1, p1], axis=1), y


def test_a_perfectly_calibrated_predictor_has_ece_near_zero() -> None:
    probs, y = _calibrated(200_000)
    assert expected_calibration_error(probs, y) < 0.01


def test_an_over_confident_predictor_has_a_large_ece() -> None:
    n = 10_000
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, n)
    right = rng.uniform(0, 1, n) < 0.7  # right 70 % of the time ...
    pred = np.where(right, y, (y + 1) % 3)
    probs = np.full((n, 3), 0.005)
    probs[np.arange(n), pred] = 0.99  # ... at 99 % confidence
    assert expected_calibration_error(probs, y) == pytest.approx(0.29, abs=0.02)
    bins = reliability_bins(probs, y)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == n
    top = bins[-1]
    assert top["count"] == n and top["confidence"] == pytest.approx(0.99) and top["accuracy"] == pytest.approx(0.7, abs=0.02)


def test_brier_score_hand_checked() -> None:
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    assert brier_score(probs, [0, 0, 0]) == pytest.approx((0 + 0.5 + 2) / 3)
    with pytest.raises(ValueError, match="labels must be in 0..1"):
        brier_score(probs, [0, 2, 0])


def test_temperature_scaling_lowers_the_nll_it_was_fitted_on() -> None:
    rng = np.random.default_rng(2)
    n, L = 5000, 5
    logits = rng.normal(0, 1.5, (n, L))
    p = softmax(logits)
    y = np.array([rng.choice(L, p=row) for row in p])  # labels drawn from softmax(logits): calibrated at T=1
    over = logits * 4.0  # the same ranking, four times over-confident
    t = fit_temperature(over, y)
    assert t == pytest.approx(4.0, rel=0.15)
    assert nll(over, y, t) < nll(over, y) - 0.1
    assert np.array_equal(softmax(over, t).argmax(1), over.argmax(1))  # accuracy unchanged
    assert expected_calibration_error(softmax(over, t), y) < expected_calibration_error(softmax(over), y)
