"""The answer of both recommenders (measured and from priors): :class:`Recommendation`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Recommendation"]


@dataclass
class Recommendation:
    """The answer: a choice (or None), the runner-up, exclusions, and the reasoning."""

    choice: str | None
    runner_up: str | None
    excluded: list[tuple[str, str]]
    """(candidate name, reason citing the measured number and the limit)."""
    reasons: list[str]
    """Why the choice, each citing measured numbers (or priors when ``measured`` is False)."""
    text: str
    """The full human-readable recommendation."""
    measured: bool = True
    """False when the recommendation comes from priors only."""
    precision: str | None = None
    """Precision at which the choice should be deployed."""
    runner_up_note: str | None = None
    """What it would take to prefer the runner-up."""
    ranking: list[str] = field(default_factory=list)
    """Eligible candidates, best first."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["excluded"] = [list(x) for x in self.excluded]
        return data

    def __str__(self) -> str:
        return self.text
