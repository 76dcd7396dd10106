"""Recommendation from measurements (filters, ranking, reasons) and from priors."""

from __future__ import annotations

import pytest

from gptbert.recommend import (
    Constraints,
    normalize_task,
    profile_data_file,
    recommend,
    recommend_from_priors,
)
from gptbert.results import CandidateResult, Quality
from tests.test_results import make_candidate, make_comparison


@pytest.fixture
def cands() -> list[CandidateResult]:
    return make_comparison().candidates


def test_tie_broken_by_latency_with_reasons_citing_numbers(cands):
    rec = recommend(cands)
    # bert-mini (0.862 [0.840, 0.883]) and gpt-mini (0.880 [0.859, 0.899]) overlap: tie; bert-mini is faster.
    assert rec.measured and rec.choice == "bert-mini" and rec.precision == "int8"
    assert rec.runner_up == "gpt-mini"
    assert rec.ranking == ["bert-mini", "gpt-mini", "bert-tiny"]
    joined = "\n".join(rec.reasons)
    assert "0.862" in joined and "0.840-0.883" in joined and "tied" in joined
    assert "6.50 ms" in joined and "3.1x faster than gpt-mini" in joined
    assert "310 MB" in joined and "11.0 MB at int8" in joined
    # What it would take to prefer the runner-up.
    assert rec.runner_up_note is not None
    assert "1.8 points better" in rec.runner_up_note and "3.1x slower at p95" in rec.runner_up_note
    assert "latency budget is above 20.1 ms" in rec.runner_up_note
    assert ("elmo-small", "failed: RuntimeError: out of memory while allocating 1.2 GB") in rec.excluded
    assert rec.text.startswith("Recommendation: bert-mini")


def test_clear_quality_winner_beats_cheaper_candidate():
    strong = make_candidate("big", "bert", 0.95, (0.94, 0.96), {"fp32": (50.0, 60.0)}, {"fp32": 400.0}, 900.0,
                            100_000_000)
    weak = make_candidate("small", "bert", 0.80, (0.78, 0.82), {"fp32": (2.0, 3.0)}, {"fp32": 16.0}, 150.0,
                          4_000_000)
    rec = recommend([weak, strong])
    assert rec.choice == "big" and rec.runner_up == "small"
    assert "15.0 points ahead of small" in rec.reasons[0]
    assert "20.0x faster" in rec.runner_up_note and "latency budget is below 60.0 ms" in rec.runner_up_note


def test_overlapping_intervals_are_not_a_tie_when_the_difference_is_significant():
    # Measured on SST-2 dev (872): 0.771 [0.742, 0.800] vs 0.819 [0.795, 0.844]. The intervals touch, but
    # the difference (4.8 points) is above 1.96 standard errors of the difference (about 3.8 points).
    fast = make_candidate("fast", "bert", 0.771, (0.742, 0.800), {"fp32": (5.0, 6.0)}, {"fp32": 20.0}, 300.0, 10)
    good = make_candidate("good", "bert", 0.819, (0.795, 0.844), {"fp32": (20.0, 27.0)}, {"fp32": 87.0}, 600.0, 10)
    close = make_candidate("close", "gpt", 0.795, (0.766, 0.821), {"fp32": (7.0, 9.0)}, {"fp32": 16.0}, 370.0, 10)
    rec = recommend([fast, good], Constraints(precision="fp32"))
    assert rec.choice == "good" and "significant difference at 95%" in rec.reasons[0]
    # 2.4 points apart with similar intervals: a statistical tie, the cheaper one wins.
    rec = recommend([good, close, fast], Constraints(precision="fp32"))
    assert rec.choice == "close" and rec.ranking == ["close", "good", "fast"]
    assert "not a significant difference at 95%" in rec.runner_up_note


def test_reduced_precision_quality_is_cited_when_measured():
    c = make_candidate("q", "bert", 0.90, (0.88, 0.92), {"fp32": (9.0, 10.0), "int8": (4.0, 5.0)},
                       {"fp32": 40.0, "int8": 12.0}, 300.0, 10)
    rec = recommend([c])
    assert rec.precision == "int8" and any("confirm accuracy at int8" in r for r in rec.reasons)
    c.extra["dev_accuracy_by_precision"] = {"fp32": 0.90, "int8": 0.894}
    rec = recommend([c])
    assert any("accuracy at int8: 0.894 on dev, measured (fp32: 0.900)" in r for r in rec.reasons)
    assert not any("confirm" in r for r in rec.reasons)


def test_tie_on_latency_broken_by_memory_then_size():
    a = make_candidate("a", "bert", 0.85, (0.83, 0.87), {"fp32": (5.0, 6.0)}, {"fp32": 40.0}, 300.0, 10)
    b = make_candidate("b", "bert", 0.86, (0.84, 0.88), {"fp32": (5.0, 6.0)}, {"fp32": 30.0}, 250.0, 10)
    c = make_candidate("c", "bert", 0.86, (0.84, 0.88), {"fp32": (5.0, 6.0)}, {"fp32": 20.0}, 250.0, 10)
    rec = recommend([a, b, c], Constraints(precision="fp32"))
    assert rec.ranking == ["c", "b", "a"]


def test_lower_is_better_metric():
    def lm(name: str, ppl: float, ci: tuple[float, float], p95: float) -> CandidateResult:
        c = make_candidate(name, "gpt", 0.0, (0.0, 0.0), {"fp32": (0.8 * p95, p95)}, {"fp32": 10.0}, 100.0, 10)
        c.quality = Quality("perplexity", dev=ppl, dev_ci=ci)
        return c

    rec = recommend([lm("worse", 40.0, (38.0, 42.0), 1.0), lm("better", 20.0, (19.0, 21.0), 5.0)])
    assert rec.choice == "better"
    rec = recommend([lm("better", 20.0, (19.0, 21.0), 5.0)], Constraints(min_quality=15.0))
    assert rec.choice is None and "perplexity 20.00" in rec.text and "min_quality 15" in rec.text


def test_constraints_exclude_with_numbers(cands):
    rec = recommend(cands, Constraints(max_latency_ms=5))
    assert rec.choice == "bert-tiny" and rec.runner_up is None
    reasons = dict(rec.excluded)
    assert "p95 latency 6.50 ms" in reasons["bert-mini"] and "max_latency_ms 5" in reasons["bert-mini"]
    assert "20.1 ms" in reasons["gpt-mini"]
    rec = recommend(cands, Constraints(max_memory_mb=400, max_disk_mb=20, precision="fp32"))
    reasons = dict(rec.excluded)
    assert "inference peak RSS 520 MB exceeds max_memory_mb 400" in reasons["gpt-mini"]
    assert "size 42.5 MB at fp32 exceeds max_disk_mb 20" in reasons["bert-mini"]
    assert rec.choice == "bert-tiny" and rec.precision == "fp32"
    rec = recommend(cands, Constraints(min_quality=0.85, precision="fp32"))
    assert "accuracy 0.781 on dev is below min_quality 0.85" in dict(rec.excluded)["bert-tiny"]


def test_everything_excluded_gives_clear_message(cands):
    rec = recommend(cands, Constraints(max_latency_ms=1, max_disk_mb=3))
    assert rec.choice is None and rec.runner_up is None
    assert rec.text.startswith("No candidate meets the constraints")
    for name in ("bert-mini", "gpt-mini", "bert-tiny", "elmo-small"):
        assert f"  - {name}: " in rec.text
    assert "1.90 ms" in rec.text and "max_disk_mb 3" in rec.text
    assert "raising max_latency_ms to 1.90 and max_disk_mb to 4.4 would admit bert-tiny" in rec.text
    assert recommend([]).choice is None


def test_needs_generation_excludes_encoders(cands):
    rec = recommend(cands, Constraints(needs_generation=True))
    assert rec.choice == "gpt-mini"
    reasons = dict(rec.excluded)
    assert "cannot generate" in reasons["bert-mini"] and "cannot generate" in reasons["bert-tiny"]
    assert any("140 tokens/s" in r for r in rec.reasons)
    only_encoders = [c for c in cands if c.family == "bert"]
    rec = recommend(only_encoders, Constraints(needs_generation=True))
    assert rec.choice is None and "cannot generate" in rec.text


def test_device_precisions_and_mismatch_note(cands):
    rec = recommend(cands, Constraints(device="cuda"), hardware={"gpu": None})
    assert rec.precision == "fp32"  # int8 is not a CUDA deployment path; bf16 only measured for bert-mini
    assert rec.choice == "bert-mini"
    assert any("measured on cpu but you deploy on cuda" in r for r in rec.reasons)
    with pytest.raises(ValueError, match="device"):
        Constraints(device="tpu")
    with pytest.raises(ValueError, match="max_latency_ms"):
        Constraints(max_latency_ms=-1)


def test_missing_measurement_cannot_pass_a_limit():
    c = make_candidate("x", "bert", 0.9, (0.88, 0.92), {}, {"fp32": 10.0}, 100.0, 10)
    rec = recommend([c], Constraints(max_latency_ms=100))
    assert rec.choice is None and "no batch-1 latency measured" in rec.text


# --------------------------------------------------------------------------- priors


def test_priors_say_nothing_was_measured():
    rec = recommend_from_priors("classify")
    assert not rec.measured
    assert rec.text.startswith("Nothing was measured")
    assert rec.choice is not None and rec.choice.startswith(("bert", "minilm"))
    assert any("Devlin et al. 2019" in r for r in rec.reasons)


def test_priors_generation_picks_gpt_and_tight_latency_picks_smallest():
    assert recommend_from_priors("generate").choice.startswith("gpt")
    rec = recommend_from_priors("sentiment", constraints=Constraints(needs_generation=True))
    assert rec.choice.startswith("gpt")
    tight = recommend_from_priors("generate", constraints=Constraints(max_latency_ms=5))
    assert tight.choice == "gpt-nano" and tight.precision == "int8"
    assert recommend_from_priors("ner", constraints=Constraints(max_latency_ms=5)).choice == "bert-tiny"


def test_priors_use_profile_and_hardware():
    profile = {"n_examples": 800, "label_counts": {"a": 700, "b": 100},
               "length": {"unit": "tokens", "p95": 600.0, "max": 900}}
    rec = recommend_from_priors("classify", profile, {"gpu": None, "cpu_flags": {"amx_bf16": True}})
    text = rec.text
    assert "800 labelled examples" in text and "pre-trained" in text
    assert "macro-F1" in text and "7.0:1" in text
    assert "600 tokens" in text and "block size of 512" in text
    assert rec.precision == "bf16"
    big = recommend_from_priors("classify", {"n_examples": 500_000})
    assert "500000 training examples" in big.text
    gpu = recommend_from_priors("qa", None, {"gpu": {"name": "H100"}}, Constraints(device="cuda"))
    assert gpu.choice == "bert-base" and gpu.precision == "bf16"


def test_task_aliases():
    assert normalize_task("NER") == "tokens" and normalize_task("text_generation") == "generate"
    with pytest.raises(ValueError, match="unknown task"):
        normalize_task("translation-of-dreams")


def test_profile_data_file(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("text\tlabel\n" + "good movie\t1\n" * 9 + "bad\t0\n")
    prof = profile_data_file(path)
    assert prof["n_examples"] == 10 and prof["label_counts"] == {"1": 9, "0": 1}
    assert prof["imbalance_ratio"] == 9.0 and prof["length"]["max"] == 2 and prof["length"]["unit"] == "words"
    rec = recommend_from_priors("classify", prof)
    assert "macro-F1" in rec.text and "10 labelled examples" in rec.text
