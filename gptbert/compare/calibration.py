"""How far each classifier's confidence can be trusted: ECE (15 bins) and Brier on dev, before and
after temperature scaling (issue #18, item 2).

The temperature is fitted on half of dev (even rows) and every figure "after" is measured on the
other half (odd rows), so the improvement is not measured on the data it was fitted on; "before"
figures are given on the same odd half and on the whole of dev. The result goes into the
candidate's ``extra`` (``calibration``, and ``reliability`` bins for the report's diagram) and into
``calibration.json`` of its run directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CALIBRATION_FILE", "calibrate"]

CALIBRATION_FILE = "calibration.json"


def _bins(probs: np.ndarray, y: np.ndarray) -> list[dict[str, float]]:
    from gptbert.metrics.calibration import reliability_bins

    return [{"lower": b["low"], "upper": b["high"], "confidence": b["confidence"], "accuracy": b["accuracy"],
             "count": b["count"]} for b in reliability_bins(probs, y)]


def calibrate(probs: Any, y: Any, run_dir: str | Path | None = None) -> dict[str, Any]:
    """``{"calibration": {...}, "reliability": {"raw": bins, "calibrated": bins}}`` of dev probabilities (N, L)."""
    from gptbert.metrics.calibration import (
        brier_score,
        expected_calibration_error,
        fit_temperature,
        nll,
        softmax,
    )

    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    t = np.asarray(y, dtype=np.int64)
    logits = np.log(p)  # softmax(log p / T) = softmax(logits / T): the per-row constant cancels
    fit, held = np.arange(0, len(t), 2), np.arange(1, len(t), 2)
    if len(held) < 2:
        return {}
    temperature = fit_temperature(logits[fit], t[fit])
    scaled = softmax(logits[held], temperature)
    raw = p[held] / p[held].sum(axis=1, keepdims=True)
    out = {
        "n_bins": 15, "temperature": temperature, "fitted_on": f"{len(fit)} dev rows (even)",
        "measured_on": f"{len(held)} dev rows (odd)",
        "ece_dev": expected_calibration_error(p / p.sum(axis=1, keepdims=True), t),
        "brier_dev": brier_score(p / p.sum(axis=1, keepdims=True), t),
        "ece_before": expected_calibration_error(raw, t[held]), "ece_after": expected_calibration_error(scaled, t[held]),
        "brier_before": brier_score(raw, t[held]), "brier_after": brier_score(scaled, t[held]),
        "nll_before": nll(logits[held], t[held]), "nll_after": nll(logits[held], t[held], temperature),
    }
    result = {"calibration": out, "reliability": {"raw": _bins(raw, t[held]), "calibrated": _bins(scaled, t[held])}}
    if run_dir is not None:
        from gptbert.io.files import atomic_write_text

        atomic_write_text(Path(run_dir) / CALIBRATION_FILE, json.dumps(out, indent=2) + "\n")
    return result
