"""The measured recommendation: filter the candidates by the constraints, rank the rest, explain.

Quality first; candidates whose quality difference is not significant at 95 % count as tied
and the cheaper one wins (p95 latency, then inference memory, then size).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gptbert.recommend.constraints import (
    Constraints,
    OperatingPoint,
    operating_point,
    tied,
    violations,
)
from gptbert.recommend.recommendation import Recommendation
from gptbert.recommend.text import (
    NO_CANDIDATES,
    choice_reasons,
    measured_text,
    nothing_eligible_text,
    runner_up_note,
)
from gptbert.results import CandidateResult

__all__ = ["rank", "recommend", "tied"]


def rank(points: Sequence[OperatingPoint]) -> list[tuple[OperatingPoint, int]]:
    """(point, tier) best first. A tier holds the best remaining candidate and every
    candidate statistically tied with it (:func:`tied`); within a tier the cheapest comes first."""
    remaining = sorted(points, key=lambda p: (-p.score, p.cost(), p.c.name))
    ranked: list[tuple[OperatingPoint, int]] = []
    tier = 0
    while remaining:
        leader = remaining[0]
        group = [p for p in remaining if tied(p, leader)]
        group.sort(key=lambda p: (p.cost(), -p.score, p.c.name))
        ranked.extend((p, tier) for p in group)
        remaining = [p for p in remaining if p not in group]
        tier += 1
    return ranked


def recommend(
    candidates: Sequence[CandidateResult],
    constraints: Constraints | None = None,
    *,
    hardware: Mapping[str, Any] | None = None,
) -> Recommendation:
    """Choose among measured candidates under ``constraints``; never raises on bad luck.

    ``hardware``: the comparison's hardware profile, used only to warn when the deploy
    device differs from the one measured on.
    """
    cons = constraints or Constraints()
    if not candidates:
        return Recommendation(None, None, [], [], NO_CANDIDATES)
    points = [operating_point(c, cons) for c in candidates]
    excluded: list[tuple[str, str]] = []
    eligible: list[OperatingPoint] = []
    for pt in points:
        why = violations(pt, cons)
        if why:
            excluded.append((pt.c.name, "; ".join(why)))
        else:
            eligible.append(pt)
    if not eligible:
        return Recommendation(None, None, excluded, [], nothing_eligible_text(points, excluded, cons))

    ranked = rank(eligible)
    best, _ = ranked[0]
    reasons = choice_reasons(best, ranked, cons, hardware)
    metrics = {p.c.quality.metric for p in eligible if p.c.quality}
    if len(metrics) > 1:
        reasons.append(f"warning: candidates report different metrics ({', '.join(sorted(metrics))}); "
                       "their quality numbers are not comparable")
    runner = ranked[1][0] if len(ranked) > 1 else None
    note = runner_up_note(best, runner, ranked[1][1] == 0) if runner else None
    ranking = [p.c.name for p, _ in ranked]
    return Recommendation(
        choice=best.c.name,
        runner_up=runner.c.name if runner else None,
        excluded=excluded,
        reasons=reasons,
        text=measured_text(best, reasons, note, excluded, ranking, cons),
        measured=True,
        precision=best.precision,
        runner_up_note=note,
        ranking=ranking,
    )
