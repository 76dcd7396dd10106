"""Every sentence the measured recommender writes is true on every measured axis (issue #21, item 3).

One test per sentence template builds candidates where each axis wins in turn and checks the
sentence against the numbers; a sweep over random candidate pairs checks every claim the
runner-up note and the reasons make (ratios, directions, "not better on any measured axis").
"""

from __future__ import annotations

import random
import re

import pytest

from gptbert.recommend import Constraints, recommend
from gptbert.recommend.numbers import ratio
from gptbert.results import CandidateResult, LatencyStats, Quality

AXES = ("p95", "p50", "throughput", "memory", "size", "decode")
BASE = {"p50": 8.0, "p95": 10.0, "throughput": 400.0, "memory": 300.0, "size": 40.0, "decode": 100.0}
BETTER = {"p50": 4.0, "p95": 5.0, "throughput": 800.0, "memory": 200.0, "size": 20.0, "decode": 200.0}
WORSE = {"p50": 16.0, "p95": 20.0, "throughput": 200.0, "memory": 600.0, "size": 80.0, "decode": 50.0}


def cand(name: str, acc: float, half_width: float = 0.01, *, family: str = "gpt", **axes: float) -> CandidateResult:
    """A candidate measured at fp32 only; unspecified axes take the BASE values."""
    v = {**BASE, **axes}
    return CandidateResult(
        name=name, family=family, source=name, task="classify",
        quality=Quality("accuracy", dev=acc, dev_ci=(acc - half_width, acc + half_width)),
        n_params=10_000_000, size_mb={"fp32": v["size"]},
        latency={"fp32": LatencyStats(p50_ms=v["p50"], p95_ms=v["p95"], mean_ms=v["p50"], n=30)},
        throughput={"fp32": v["throughput"]}, peak_rss_mb={"inference": v["memory"]},
        decode_tokens_per_s=v["decode"],
    )


FP32 = Constraints(precision="fp32")


def note_of(best: CandidateResult, other: CandidateResult) -> str:
    rec = recommend([best, other], FP32)
    assert rec.choice == best.name and rec.runner_up == other.name, rec.text
    assert rec.runner_up_note is not None
    return rec.runner_up_note


# --------------------------------------------------------------------------- the runner-up note, axis by axis

EXPECTED_PRO = {
    "p95": ("2.0x faster at p95 (5.00 vs 10.0 ms)", "your latency budget is below 10.0 ms"),
    "p50": ("2.0x faster at p50 (4.00 vs 8.00 ms)", "the median (p50) latency matters more to you than p95"),
    "throughput": ("2.0x the throughput (800 vs 400 items/s at batch 32)", "throughput at batch 32 matters more"),
    "memory": ("lighter in memory (200 vs 300 MB peak RSS)", "your memory budget is below 300 MB"),
    "size": ("smaller (20.0 vs 40.0 MB at fp32)", "your disk budget is below 40.0 MB"),
    "decode": ("decodes 2.0x faster (200 vs 100 tokens/s)", "generation speed matters most to you"),
}


@pytest.mark.parametrize("axis", AXES)
def test_runner_up_note_names_the_one_axis_where_the_runner_up_wins(axis):
    # The choice is clearly better on quality; the runner-up wins on `axis` alone.
    best, other = cand("a", 0.90), cand("b", 0.80, **{axis: BETTER[axis]})
    note = note_of(best, other)
    phrase, condition = EXPECTED_PRO[axis]
    assert note.startswith("b is 10.0 points worse on accuracy but " + phrase), note
    assert condition in note and "not better on any measured axis" not in note


@pytest.mark.parametrize("axis", AXES)
def test_runner_up_note_names_the_axis_where_the_runner_up_loses(axis):
    best, other = cand("a", 0.90), cand("b", 0.80, **{axis: WORSE[axis]})
    note = note_of(best, other)
    assert "not better on any measured axis" in note and "choose it if" not in note
    words = {"p95": "2.0x slower at p95 (20.0 vs 10.0 ms)", "p50": "2.0x slower at p50 (16.0 vs 8.00 ms)",
             "throughput": "2.0x less throughput (200 vs 400 items/s at batch 32)",
             "memory": "2.0x the memory (600 vs 300 MB peak RSS)", "size": "2.0x the size (80.0 vs 40.0 MB at fp32)",
             "decode": "decodes 2.0x slower (50 vs 100 tokens/s)"}
    assert f"b is 10.0 points worse on accuracy and {words[axis]}" in note, note


def test_runner_up_note_when_the_runner_up_has_the_better_quality():
    # Tied on quality (not significant), the runner-up slower: it is the pick only for its quality.
    best, other = cand("a", 0.86, 0.03), cand("b", 0.87, 0.03, p95=30.0, p50=25.0)
    note = note_of(best, other)
    assert note.startswith("b is 1.0 points better on accuracy (not a significant difference at 95%) but "
                           "3.0x slower at p95 (30.0 vs 10.0 ms)")
    assert "choose it if your latency budget is above 30.0 ms and you want the higher accuracy" in note
    # Better quality and nothing dearer measured: the note says what it would be chosen for.
    best, other = cand("a", 0.86, 0.03, memory=290.0), cand("b", 0.87, 0.03)
    note = note_of(best, other)
    assert "better on accuracy" in note and "choose it if accuracy matters more to you than cost" in note


def test_runner_up_note_that_is_not_better_anywhere_says_so_and_lists_what_is_about_the_same():
    best, other = cand("a", 0.90), cand("b", 0.80, throughput=401.0, memory=295.0)
    note = note_of(best, other)
    assert note == ("b is 10.0 points worse on accuracy; it is not better on any measured axis "
                    "(about the same p95 latency (10.0 vs 10.0 ms), about the same throughput (401 vs 400 items/s "
                    "at batch 32), about the same memory (295 vs 300 MB peak RSS), about the same size (40.0 vs 40.0 "
                    "MB at fp32), about the same decoding speed (100 vs 100 tokens/s)).")
    # The same quality to the printed digit is "about the same", never "0.0 points".
    best, other = cand("a", 0.9001, 0.03, p95=9.0), cand("b", 0.9003, 0.03)
    note = note_of(best, other)
    assert note.startswith("b has about the same accuracy (0.900 vs 0.900)") and "0.0 points" not in note


def test_issue_21_banking77_runner_up_has_the_higher_throughput():
    # bert-mini: fp32 707 vs 640 items/s at batch 32, but the choice (gpt-mini) is far better on quality.
    best = cand("gpt-mini", 0.90, p95=9.0, throughput=640.0)
    other = cand("bert-mini", 0.70, family="bert", p95=10.0, throughput=707.0)
    note = note_of(best, other)
    assert "1.1x the throughput (707 vs 640 items/s at batch 32)" in note
    assert "not better on any measured axis" not in note and "throughput at batch 32 matters more" in note


def test_ratios_near_one_are_never_called_faster_or_slower():
    assert ratio(10.0, 10.0) is None and ratio(10.04, 10.0) is None
    assert ratio(10.4, 10.0) == "1.04x" and ratio(10.96, 10.0) == "1.1x" and ratio(31.0, 10.0) == "3.1x"
    best, other = cand("a", 0.90, p95=10.0), cand("b", 0.80, p95=10.3, throughput=396.0)
    note = note_of(best, other)
    assert "1.03x slower at p95 (10.3 vs 10.0 ms)" in note and "1.01x less throughput (396 vs 400" in note
    rec = recommend([best, cand("b", 0.80, p95=10.03)], FP32)
    assert "about as fast as b (10.0 ms)" in rec.reasons[1]
    assert not re.search(r"\b1\.00?x", rec.text)


# --------------------------------------------------------------------------- the reasons for the choice


def test_quality_reason_templates():
    only = recommend([cand("a", 0.9)], FP32)
    assert only.reasons[0].startswith("the only candidate meeting the constraints: accuracy 0.900 on dev")
    clear = recommend([cand("a", 0.9), cand("b", 0.8)], FP32)
    assert "best quality: accuracy 0.900 on dev (95% CI 0.890-0.910), 10.0 points ahead of b (0.800), a significant" \
           in clear.reasons[0]
    # A tie that the highest wins on cost, and one that a lower (but tied) candidate wins.
    top = recommend([cand("a", 0.87, 0.03, p95=5.0), cand("b", 0.86, 0.03)], FP32)
    assert top.choice == "a" and "the highest, but not significantly above b" in top.reasons[0]
    low = recommend([cand("a", 0.86, 0.03, p95=5.0), cand("b", 0.87, 0.03)], FP32)
    assert low.choice == "a" and "statistically tied with b" in low.reasons[0]
    for rec in (top, low):
        assert "cheapest of the tied candidates wins (lowest p95 latency, then memory, then size)" in rec.reasons[0]
    # "Cheapest" by the stated order: equal p95, so memory decides (although a is the larger on disk).
    mem = recommend([cand("a", 0.86, 0.03, memory=200.0, size=80.0), cand("b", 0.87, 0.03)], FP32)
    assert mem.choice == "a"


def test_fact_reasons_cite_the_numbers_of_the_choice():
    rec = recommend([cand("a", 0.9, p95=6.5, p50=5.5), cand("b", 0.8, p95=20.0)],
                    Constraints(precision="fp32", max_latency_ms=26, max_memory_mb=600, max_disk_mb=80))
    assert rec.reasons[1] == "p95 latency 6.50 ms at batch 1 (fp32), p50 5.50 ms; 3.1x faster than b (20.0 ms)"
    assert "inference peak RSS 300 MB" in rec.reasons and "size 40.0 MB at fp32 (10.0M parameters)" in rec.reasons
    assert "throughput 400 items/s at batch 32 (fp32)" in rec.reasons and "decodes 100 tokens/s" in rec.reasons
    assert "meets max_latency_ms 26 (uses 25%), max_memory_mb 600 (uses 50%), max_disk_mb 80 (uses 50%)" \
           in rec.reasons


# --------------------------------------------------------------------------- exclusions and relaxations


def test_every_violation_cites_the_measured_number_and_the_limit():
    c = cand("a", 0.70, p95=20.0, memory=500.0, size=90.0, family="bert")
    rec = recommend([c], Constraints(precision="fp32", max_latency_ms=10, max_memory_mb=400, max_disk_mb=50,
                                     min_quality=0.8, needs_generation=True))
    (name, reason), = rec.excluded
    for part in ("cannot generate text (BERT is an encoder-only model)",
                 "p95 latency 20.0 ms at batch 1 (fp32, its fastest allowed precision) exceeds max_latency_ms 10",
                 "inference peak RSS 500 MB exceeds max_memory_mb 400", "size 90.0 MB at fp32 exceeds max_disk_mb 50",
                 "accuracy 0.700 on dev is below min_quality 0.8"):
        assert part in reason
    assert "No change to the numeric limits alone would admit a candidate." in rec.text


def test_closest_relaxation_admits_the_candidate_it_names():
    cands = [cand("a", 0.9, p95=20.0, memory=500.0), cand("b", 0.8, p95=12.0, size=60.0)]
    limits = {"max_latency_ms": 10.0, "max_memory_mb": 400.0, "max_disk_mb": 50.0}
    rec = recommend(cands, Constraints(precision="fp32", **limits))
    m = re.search(r"Closest: raising (.+) would admit (\w+)\.", rec.text)
    assert m is not None, rec.text
    raised = dict(limits)
    for change in m.group(1).split(" and "):
        name, value = change.split(" to ")
        raised[name] = float(value)
    assert recommend(cands, Constraints(precision="fp32", **raised)).choice == m.group(2) == "b"


# --------------------------------------------------------------------------- a sweep: every claim checked


def _claims_hold(best: CandidateResult, other: CandidateResult, note: str, reasons: list[str]) -> None:
    b, o = best, other
    val = {
        "p95": (o.latency["fp32"].p95_ms, b.latency["fp32"].p95_ms),
        "p50": (o.latency["fp32"].p50_ms, b.latency["fp32"].p50_ms),
        "throughput": (o.throughput["fp32"], b.throughput["fp32"]),
        "memory": (o.peak_rss_mb["inference"], b.peak_rss_mb["inference"]),
        "size": (o.size_mb["fp32"], b.size_mb["fp32"]),
        "decode": (o.decode_tokens_per_s, b.decode_tokens_per_s),
    }
    lower_better = {"p95", "p50", "memory", "size"}
    # Every "Nx faster/slower at pXX (o vs b ms)" has the right direction and ratio.
    for r, word, axis, x, y in re.findall(r"([\d.]+)x (faster|slower) at (p95|p50) \(([\d.]+) vs ([\d.]+) ms\)", note):
        ov, bv = val[axis]
        assert (ov < bv) == (word == "faster") and float(r) > 1.0
        assert float(r) == pytest.approx(max(ov, bv) / min(ov, bv), abs=0.051)
    for r, word in re.findall(r"([\d.]+)x (the|less) throughput", note):
        ov, bv = val["throughput"]
        assert (ov > bv) == (word == "the") and float(r) == pytest.approx(max(ov, bv) / min(ov, bv), abs=0.051)
    assert not re.search(r"\b1\.00?x", note + " ".join(reasons))
    # "Not better on any measured axis" only when no axis is better beyond its noise band.
    better = []
    for axis, (ov, bv) in val.items():
        if axis in lower_better:
            noise = 0.05 if axis == "memory" else 0.005
            if ov < bv * (1 - noise) and f"{ov:.1f}" != f"{bv:.1f}":
                better.append(axis)
        elif ov > bv * 1.005:
            better.append(axis)
    q_better = o.quality.dev - b.quality.dev >= 0.0005
    if better or q_better:
        assert "not better on any measured axis" not in note, (better, note)
    else:
        assert "not better on any measured axis" in note, note
    # The choice's latency comparison points the right way.
    m = re.search(r"([\d.]+)x faster than (\w+) \(([\d.]+) ms\)", reasons[1])
    if m:
        assert float(m.group(3)) > b.latency["fp32"].p95_ms


def test_sweep_of_random_pairs_every_claim_is_true():
    rng = random.Random(21)
    for _ in range(300):
        axes = {k: v * rng.choice([0.5, 0.97, 0.999, 1.0, 1.001, 1.03, 1.08, 2.0]) for k, v in BASE.items()}
        axes["p50"] = min(axes["p50"], axes["p95"])
        best, other = cand("a", 0.90, 0.02, **BASE), cand("b", rng.choice([0.80, 0.89, 0.91]), 0.02, **axes)
        rec = recommend([best, other], FP32)
        if rec.choice != "a":
            best, other = other, best
        assert rec.runner_up_note is not None
        _claims_hold(best, other, rec.runner_up_note, rec.reasons)
