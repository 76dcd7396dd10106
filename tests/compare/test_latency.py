"""The interleaved latency pass and the FLOPs sanity check (issue #14, item 4)."""

from __future__ import annotations

from gptbert.compare.latency import FLOPS_TOLERANCE, flops_outliers
from gptbert.recommend import Constraints, recommend
from gptbert.recommend.constraints import operating_point
from gptbert.results import CandidateResult, LatencyStats, Quality


def test_a_small_model_measured_far_slower_than_a_bigger_one_is_flagged():
    # the measurement the issue saw: bert-mini 206 ms p95 vs MiniLM 4.9 ms, MiniLM ~3.4x the FLOPs
    flagged = flops_outliers({"bert-mini": 206.0, "minilm": 4.9}, {"bert-mini": 1.0e8, "minilm": 3.4e8})
    assert list(flagged) == ["bert-mini"] and "minilm" in flagged["bert-mini"]


def test_plausible_latencies_are_not_flagged():
    # fixed per-call overheads: a tiny model only a little faster than a 27x bigger one is fine
    assert flops_outliers({"bert-tiny": 1.2, "minilm": 6.0}, {"bert-tiny": 1.2e7, "minilm": 3.4e8}) == {}
    # a bigger model that is slower, even much slower, is fine
    assert flops_outliers({"a": 1.0, "b": 50.0}, {"a": 1e7, "b": 1e9}) == {}
    # no FLOPs (tfidf-lr): not checked
    assert flops_outliers({"tfidf-lr": 500.0, "minilm": 6.0}, {"tfidf-lr": None, "minilm": 3.4e8}) == {}
    # just inside the tolerance
    assert flops_outliers({"a": FLOPS_TOLERANCE * 0.99, "b": 1.0}, {"a": 1.0, "b": 1.0}) == {}


def _cand(name: str, acc: float, p95: float, *, family: str = "bert", size: float = 10.0, **extra) -> CandidateResult:
    return CandidateResult(name=name, family=family, source=name, task="classify",
                           quality=Quality("accuracy", dev=acc, dev_ci=(acc - 0.01, acc + 0.01)),
                           size_mb={"fp32": size}, latency={"fp32": LatencyStats(p95 * 0.8, p95, p95 * 0.9, 30)},
                           peak_rss_mb={"inference": 300.0}, extra=dict(extra))


def test_the_recommendation_does_not_reason_from_a_suspect_latency():
    fast_but_suspect = _cand("bert-mini", 0.90, 0.5, latency_suspect="p50 0.4 ms is ...")
    pt = operating_point(fast_but_suspect, Constraints())
    assert pt.p95 is None and pt.p50 is None
    rec = recommend([fast_but_suspect, _cand("minilm", 0.90, 6.0, size=90.0)], Constraints(precision="fp32"))
    assert "bert-mini" not in rec.reasons[-1] or "faster than bert-mini" not in rec.text
    assert "faster than bert-mini" not in rec.text
