"""A budget-limited answer is called one (issue #21, item 6)."""

from __future__ import annotations

from gptbert.compare.train import budget_limited
from gptbert.recommend import Constraints, recommend
from gptbert.results import CandidateResult, LatencyStats, Quality

CURVE = [{"step": 100, "metric": 0.60, "phase": "finetune"}, {"step": 200, "metric": 0.70, "phase": "finetune"},
         {"step": 200, "loss": 1.0, "phase": "finetune"}]


def test_still_rising_at_the_budget_is_flagged_with_its_slope():
    got = budget_limited(CURVE, "time_budget", 0.7)
    assert got["slope_per_100_steps"] == 0.1 and got["epochs"] == 0.7 and "0.600 -> 0.700" in got["why"]


def test_not_flagged_when_it_converged_or_stopped_otherwise():
    assert budget_limited(CURVE, "early_stopping") is None
    assert budget_limited(CURVE, "max_epochs") is None
    falling = [dict(CURVE[0], metric=0.7), dict(CURVE[1], metric=0.69)]
    assert budget_limited(falling, "time_budget") is None
    assert budget_limited(CURVE[:1], "time_budget")["slope_per_100_steps"] is None


def test_the_recommendation_says_the_answer_is_budget_limited():
    def cand(name, acc, **extra):
        return CandidateResult(name=name, family="gpt", source=name, task="classify",
                               quality=Quality("accuracy", dev=acc, dev_ci=(acc - 0.01, acc + 0.01)),
                               latency={"fp32": LatencyStats(1.0, 2.0, 1.5, 30)}, extra=extra)

    rec = recommend([cand("gpt-mini", 0.8), cand("minilm", 0.7, budget_limited=budget_limited(CURVE, "time_budget", 0.7))],
                    Constraints(precision="fp32"))
    note = next(r for r in rec.reasons if "budget-limited" in r)
    assert "minilm (+10.0 points per 100 steps at the end, 0.7 epochs)" in note and "longer --budget" in note
    assert not any("budget-limited" in r for r in recommend([cand("a", 0.8)], Constraints(precision="fp32")).reasons)
