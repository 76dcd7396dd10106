"""ECE / Brier before and after temperature scaling of a compare candidate (issue #18, item 2)."""

from __future__ import annotations

import json

import numpy as np

from gptbert.compare.calibration import CALIBRATION_FILE, calibrate


def _overconfident(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """3 classes, right 60 % of the time, but always ~97 % sure."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.6, y, (y + rng.integers(1, 3, n)) % 3)
    logits = np.full((n, 3), 0.0)
    logits[np.arange(n), pred] = 4.2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return p, y


def test_temperature_scaling_fixes_an_overconfident_classifier_on_held_out_rows(tmp_path):
    p, y = _overconfident()
    out = calibrate(p, y, tmp_path)
    cal = out["calibration"]
    assert cal["ece_before"] > 0.3 and cal["ece_after"] < 0.05
    assert cal["nll_after"] < cal["nll_before"] and cal["brier_after"] < cal["brier_before"]
    assert cal["temperature"] > 1.5  # softened
    assert len(out["reliability"]["raw"]) == 15 and sum(b["count"] for b in out["reliability"]["raw"]) == 2000
    assert json.loads((tmp_path / CALIBRATION_FILE).read_text())["temperature"] == cal["temperature"]


def test_a_calibrated_classifier_stays_calibrated():
    rng = np.random.default_rng(1)
    n = 6000
    conf = rng.uniform(0.5, 1.0, n)
    y = rng.integers(0, 2, n)
    right = rng.random(n) < conf
    pred = np.where(right, y, 1 - y)
    p = np.zeros((n, 2))
    p[np.arange(n), pred] = conf
    p[np.arange(n), 1 - pred] = 1 - conf
    cal = calibrate(p, y)["calibration"]
    assert cal["ece_before"] < 0.03 and abs(cal["temperature"] - 1.0) < 0.15
