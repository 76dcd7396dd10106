"""The recommendation says plainly where it stands against the baselines (issue #14, item 4)."""

from __future__ import annotations

from gptbert.recommend import Constraints, recommend
from gptbert.results import CandidateResult, LatencyStats, Quality

FP32 = Constraints(precision="fp32")


def cand(name: str, acc: float, p95: float, size: float, *, family: str, hw: float = 0.01) -> CandidateResult:
    return CandidateResult(name=name, family=family, source=name, task="classify",
                           quality=Quality("accuracy", dev=acc, dev_ci=(acc - hw, acc + hw)), size_mb={"fp32": size},
                           latency={"fp32": LatencyStats(p95 * 0.8, p95, p95 * 0.9, 30)},
                           peak_rss_mb={"inference": 300.0})


def test_a_tied_baseline_is_chosen_and_named_as_the_answer():
    tfidf = cand("tfidf-lr", 0.905, 1.0, 5.0, family="baseline")
    minilm = cand("minilm", 0.910, 6.0, 87.0, family="bert")
    rec = recommend([minilm, tfidf], FP32)
    assert rec.choice == "tfidf-lr"
    why = next(r for r in rec.reasons if "baseline" in r)
    assert "the baseline tfidf-lr is the answer" in why and "statistically tied" in why
    assert "6.0x faster" in why and "smaller: 5.0 vs 87.0 MB" in why


def test_a_model_that_ties_the_baseline_says_the_baseline_is_an_equal_choice():
    # the transformer is cheaper on latency here, so it wins the tie; the baseline is still named
    embed = cand("embed-lr(minilm)", 0.936, 7.0, 87.0, family="baseline")
    bert = cand("bert-mini", 0.930, 2.0, 18.0, family="bert")
    rec = recommend([embed, bert], FP32)
    assert rec.choice == "bert-mini"
    why = next(r for r in rec.reasons if "baseline" in r)
    assert why.startswith("not significantly better than the baseline embed-lr(minilm) (0.936")
    assert "equal choice" in why


def test_a_model_significantly_better_than_the_best_baseline_says_by_how_much():
    rec = recommend([cand("tfidf-lr", 0.80, 1.0, 5.0, family="baseline"),
                     cand("embed-lr(minilm)", 0.84, 7.0, 87.0, family="baseline"),
                     cand("minilm", 0.93, 7.0, 87.0, family="bert")], FP32)
    assert rec.choice == "minilm"
    why = next(r for r in rec.reasons if "baseline" in r)
    assert why.startswith("significantly better than the best baseline, embed-lr(minilm) (0.840") and "9.0 points" in why


def test_without_a_baseline_the_reasons_say_one_is_missing():
    rec = recommend([cand("bert-mini", 0.9, 2.0, 18.0, family="bert"), cand("gpt-mini", 0.8, 3.0, 30.0, family="gpt")],
                    FP32)
    assert any("no baseline (tfidf-lr, embed-lr) was measured" in r for r in rec.reasons)
