"""Typed inputs of the learning-curve and reliability plots.

The measurements behind them (issue #18: learning-curve crossover, calibrated confidence) are
not taken yet; when they are, each candidate's results carry them and
:mod:`gptbert.report.extras` reads them into these types. The plots take only these types.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["LearningCurvePoint", "ReliabilityBin", "expected_calibration_error"]


@dataclass(frozen=True)
class LearningCurvePoint:
    """One candidate's dev quality after training on a subset of the training data."""

    candidate: str
    """``CandidateResult.name`` of the candidate."""
    train_size: int
    """Labelled training examples used (all classes together)."""
    quality: float
    """Dev quality (mean over seeds when several were run)."""
    low: float | None = None
    """Lower end of the 95 % interval of ``quality`` (None: no interval)."""
    high: float | None = None
    per_class: int | None = None
    """Examples per class when the subset was drawn per class (the x axis then counts these)."""
    train_s: float | None = None
    """Training wall time of this point, seconds."""

    @classmethod
    def from_dict(cls, candidate: str, data: Mapping[str, Any]) -> "LearningCurvePoint":
        ci = data.get("ci") or (data.get("low"), data.get("high"))
        return cls(candidate=candidate, train_size=int(data["train_size"]), quality=float(data["quality"]),
                   low=None if ci[0] is None else float(ci[0]), high=None if ci[1] is None else float(ci[1]),
                   per_class=None if data.get("per_class") is None else int(data["per_class"]),
                   train_s=None if data.get("train_s") is None else float(data["train_s"]))


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin of a reliability diagram."""

    lower: float
    """Bin edges on the predicted confidence, in [0, 1]."""
    upper: float
    confidence: float
    """Mean predicted confidence of the examples in the bin."""
    accuracy: float
    """Share of those examples predicted correctly."""
    count: int

    def __post_init__(self) -> None:
        if not 0.0 <= self.lower <= self.upper <= 1.0:
            raise ValueError(f"ReliabilityBin: expected 0 <= lower <= upper <= 1, got {self.lower}, {self.upper}")
        if self.count < 0:
            raise ValueError(f"ReliabilityBin: negative count {self.count}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ReliabilityBin":
        return cls(lower=float(data["lower"]), upper=float(data["upper"]), confidence=float(data["confidence"]),
                   accuracy=float(data["accuracy"]), count=int(data["count"]))


def expected_calibration_error(bins: Sequence[ReliabilityBin]) -> float:
    """Count-weighted mean of ``|accuracy - confidence|`` over the bins (NaN without examples)."""
    total = sum(b.count for b in bins)
    if total == 0:
        return math.nan
    return sum(b.count * abs(b.accuracy - b.confidence) for b in bins) / total
