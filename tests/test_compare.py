"""Unit tests of gptbert.compare: candidate specs, the budget split, settings, the demo check, summaries."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gptbert.compare import (
    DEMO_CANDIDATES,
    DEMO_DIR,
    BudgetPlan,
    CandidateSpec,
    CompareError,
    CompareOutcome,
    CompareSettings,
    choose_threads,
    demo_problems,
    demo_settings,
    format_summary,
    parse_candidate,
    parse_candidates,
    safe_dir_name,
    split_budget,
)
from gptbert.compare.inference import _timed
from gptbert.results import CandidateResult, Comparison, LatencyStats, Quality, TrainStats

# --------------------------------------------------------------------------- candidate specs


def test_parse_preset_alias_and_overrides():
    c = parse_candidate("bert-mini")
    assert (c.name, c.source, c.overrides, c.is_preset) == ("bert-mini", "bert-mini", {}, True)
    assert c.family() == "bert"

    c = parse_candidate("elmo-small:use_char_cnn=false:n_embd=128:dropout=0.2")
    assert c.source == "elmo-small" and c.family() == "elmo"
    assert c.overrides == {"use_char_cnn": False, "n_embd": 128, "dropout": 0.2}
    assert isinstance(c.overrides["n_embd"], int) and c.overrides["use_char_cnn"] is False
    # The overrides are part of the name: the report never hides them.
    assert c.name == "elmo-small(use_char_cnn=False,n_embd=128,dropout=0.2)"
    assert c.config().n_embd == 128 and c.config().use_char_cnn is False
    assert "(" not in c.dir_name and "," not in c.dir_name

    c = parse_candidate(" small = gpt-nano:n_layer=2 ")
    assert (c.name, c.source, c.overrides) == ("small", "gpt-nano", {"n_layer": 2})
    assert c.family() == "gpt"


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("bert-mini:n_layer", "not KEY=VALUE"),
    ("bert-mini:=3", "not KEY=VALUE"),
    ("bert-mini:n_layers=3", "unknown model setting"),
    ("bert-mini:vocab_size=100", "cannot be overridden"),
    ("bert-mini:head=lm", "cannot be overridden"),
    ("some/dir:n_layer=2", "presets only"),
    ("gpt-nano:n_embd=50", "divisible"),
    ("=bert-mini", "ALIAS=SOURCE"),
])
def test_parse_candidate_errors(text, message):
    with pytest.raises(CompareError, match=message):
        parse_candidate(text)


def test_paths_are_checked_when_the_candidate_runs(tmp_path):
    # A missing path parses (so the comparison can report it as a failed candidate) ...
    c = parse_candidate(str(tmp_path / "nope"))
    assert c.name == "nope" and not c.is_preset
    with pytest.raises(FileNotFoundError, match="neither a preset"):
        c.family()
    # ... a file is not a checkpoint, and a generic folder name takes its parent's.
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        parse_candidate(str(f)).family()
    d = tmp_path / "minilm" / "model"
    d.mkdir(parents=True)
    assert parse_candidate(str(d)).name == "minilm-model"
    assert parse_candidate(str(d) + "/").name == "minilm-model"
    with pytest.raises(ValueError, match="not a gptbert or Hugging Face checkpoint"):
        parse_candidate(str(d)).family()


def test_parse_candidates_lists_and_unique_names():
    specs = parse_candidates(["bert-tiny,gpt-nano", " bert-tiny , elmo-small:n_layer=1", "bert-tiny"])
    assert [s.name for s in specs] == ["bert-tiny", "gpt-nano", "bert-tiny-2", "elmo-small(n_layer=1)", "bert-tiny-3"]
    assert len({s.dir_name for s in specs}) == len(specs)
    assert parse_candidates("a=bert-tiny,b=bert-tiny")[1].name == "b"
    with pytest.raises(CompareError, match="no candidates"):
        parse_candidates(" , ")
    # Names that differ only in characters a folder name cannot hold still get distinct folders.
    specs = parse_candidates(["x y=bert-tiny", "x_y=gpt-nano"])
    assert specs[0].dir_name == "x_y" and specs[1].name == "x_y-2" and specs[1].dir_name == "x_y-2"


def test_safe_dir_name():
    assert safe_dir_name("elmo-small(use_char_cnn=False)") == "elmo-small_use_char_cnn_False"
    assert safe_dir_name("../..") == "candidate"
    assert safe_dir_name("a/b c") == "a_b_c"


# --------------------------------------------------------------------------- budget split


def test_split_budget_without_pretraining():
    assert split_budget("5m", pretraining=False) == BudgetPlan(300.0, 0.0, 300.0)
    assert split_budget(90, pretraining=False).finetune_s == 90.0
    assert "fine-tuning" in split_budget("5m", pretraining=False).describe()
    with pytest.raises(CompareError, match="needs --pretrain-corpus"):
        split_budget("5m", "1m", pretraining=False)


def test_split_budget_with_pretraining():
    plan = split_budget("5m", pretraining=True)
    assert (plan.pretrain_s, plan.finetune_s) == (150.0, 150.0)
    plan = split_budget("50s", "20s", pretraining=True)
    assert (plan.total_s, plan.pretrain_s, plan.finetune_s) == (50.0, 20.0, 30.0)
    assert math.isclose(plan.pretrain_s + plan.finetune_s, plan.total_s)
    assert split_budget("1h", pretraining=True, pretrain_share=0.75).pretrain_s == 2700.0
    text = split_budget("10m", "4m", pretraining=True).describe()
    assert "10m per candidate" in text and "pre-training 4m" in text and "fine-tuning 6m" in text


@pytest.mark.parametrize("budget, pre, message", [
    ("50s", "50s", "must be less than --budget"),
    ("50s", "2m", "must be less than --budget"),
    ("1.5s", None, "too small to split"),
    ("10s", "9.5s", "too small to split"),
    ("soon", None, "--budget"),
    ("5m", "-1s", "--pretrain-budget"),
])
def test_split_budget_errors(budget, pre, message):
    with pytest.raises(CompareError, match=message):
        split_budget(budget, pre, pretraining=True)


# --------------------------------------------------------------------------- settings


def _settings(tmp_path: Path, **kw) -> CompareSettings:
    base = dict(train=str(DEMO_DIR / "train.tsv"), dev=str(DEMO_DIR / "dev.tsv"),
                candidates=parse_candidates("bert-tiny"), out_dir=str(tmp_path / "out"), db=None)
    base.update(kw)
    return CompareSettings(**base)


def test_settings_validation(tmp_path):
    _settings(tmp_path).validate()
    with pytest.raises(CompareError, match="no such file"):
        _settings(tmp_path, dev=str(tmp_path / "missing.tsv")).validate()
    with pytest.raises(CompareError, match="--pretrain-corpus"):
        _settings(tmp_path, pretrain_corpus=[str(tmp_path / "none.txt")]).validate()
    with pytest.raises(CompareError, match="--precision"):
        _settings(tmp_path, precisions=["fp16"]).validate()
    with pytest.raises(CompareError, match="--max-len"):
        _settings(tmp_path, max_len=0).validate()
    _settings(tmp_path, task="tokens").validate()  # the task registry fine-tunes and scores tokens/qa/generate
    with pytest.raises(CompareError, match="expected one of"):
        _settings(tmp_path, task="ner").validate()


def test_tasks_not_in_the_table_are_refused(tmp_path, monkeypatch):
    from gptbert.tasks import TASKS

    monkeypatch.delitem(TASKS, "qa")
    with pytest.raises(CompareError, match="--task 'qa': expected one of classify, tokens, generate"):
        _settings(tmp_path, task="qa").validate()
    _settings(tmp_path).validate()


def test_settings_plan_pretrains_presets_only(tmp_path):
    corpus = [str(DEMO_DIR / "corpus.txt")]
    assert _settings(tmp_path, budget="60s").plan().pretrain_s == 0.0
    assert _settings(tmp_path, budget="60s", pretrain_corpus=corpus).plan().pretrain_s == 30.0
    # Only checkpoints: nothing to pre-train, the whole budget is fine-tuning.
    ckpt = parse_candidates(str(tmp_path))
    assert _settings(tmp_path, budget="60s", pretrain_corpus=corpus, candidates=ckpt).plan().finetune_s == 60.0


def test_demo_settings():
    s = demo_settings(db=None)
    s.validate()
    assert s.demo and s.train.endswith("train.tsv") and s.pretrain_corpus[0].endswith("corpus.txt")
    # the two baselines (embed-lr with the installed MiniLM) and one small model per family
    assert [c.family() for c in s.candidates] == ["baseline", "baseline", "bert", "gpt", "elmo"]
    assert [c.name for c in s.candidates[:2]] == ["tfidf-lr", "embed-lr(minilm)"]
    assert len(s.candidates) == len(DEMO_CANDIDATES) + 2
    plan = s.plan()
    assert plan.pretrain_s == 25.0 and plan.finetune_s == 25.0
    assert demo_settings(budget="20s").plan().pretrain_s == 10.0
    assert [c.name for c in demo_settings(candidates=["gpt-nano"]).candidates] == ["gpt-nano"]


# --------------------------------------------------------------------------- demo check and summary


def _candidate(name: str, dev: float | None, status: str = "ok", family: str = "bert") -> CandidateResult:
    q = Quality(metric="accuracy", dev=dev, dev_ci=(dev - 0.05, min(1.0, dev + 0.05))) if dev is not None else None
    return CandidateResult(
        name=name, family=family, source=name, task="classify", quality=q, status=status,
        error=None if status == "ok" else "fine-tune: RuntimeError: boom", n_params=1_234_567,
        size_mb={"fp32": 4.7, "bf16": 2.35, "int8": 1.2},
        latency={"fp32": LatencyStats(1.5, 2.5, 1.7, 20)}, throughput={"fp32": 800.0},
        peak_rss_mb={"train": 400.0, "inference": 250.0},
        pretrain=TrainStats(steps=10), finetune=TrainStats(steps=50),
        decode_tokens_per_s=120.0 if family == "gpt" else None,
    )


def _outcome(cands: list[CandidateResult], baseline: float = 0.5, interrupted: bool = False) -> CompareOutcome:
    return CompareOutcome(Comparison(task="classify", candidates=cands), Path("."), {}, None,
                          interrupted=interrupted, majority_baseline=baseline)


def test_demo_problems():
    assert demo_problems(_outcome([_candidate("a", 0.9), _candidate("b", 0.6)])) == []
    problems = demo_problems(_outcome([_candidate("a", 0.5), _candidate("b", None, status="failed")]))
    assert any("b failed" in p and "boom" in p for p in problems)
    assert any("not above the majority-class baseline (0.500)" in p for p in problems)
    assert "no candidate has a dev accuracy" in demo_problems(_outcome([_candidate("a", None, "failed")]))[-1]
    assert "interrupted" in demo_problems(_outcome([_candidate("a", 0.9)], interrupted=True))[0]


def test_format_summary():
    comp = Comparison(task="classify", candidates=[_candidate("bert-tiny", 0.875),
                                                   _candidate("gpt-nano", 0.8, family="gpt"),
                                                   _candidate("broken", None, status="failed", family="other")])
    text = format_summary(comp)
    lines = text.splitlines()
    assert len(lines) == 5 and lines[0].startswith("candidate")
    assert "0.875 [0.825, 0.925]" in lines[2] and "1.23M" in lines[2] and "1.50/2.50" in lines[2]
    assert "n/a" in lines[2] and "120" in lines[3] and "failed" in lines[4]
    assert "400/250" in lines[2] and "10/50" in lines[2]


def test_timed_stops_at_repeats_and_deadline():
    calls = []
    samples = _timed(lambda: calls.append(1), repeats=5, max_seconds=60.0, warmup=1)
    assert len(samples) == 5 and len(calls) == 6
    # A deadline already passed still gives at least 3 samples.
    assert len(_timed(lambda: None, repeats=50, max_seconds=0.0, warmup=0)) == 3


def test_candidate_spec_dataclass_defaults():
    c = CandidateSpec("n", "bert-tiny")
    assert c.overrides == {} and c.dir_name == "n"


def test_choose_threads():
    assert choose_threads(3, cores=2, load=0.0, default=2) == (3, "3 (--threads)")
    assert choose_threads(None, cores=2, load=0.5, default=2)[0] == 2
    n, why = choose_threads(None, cores=2, load=5.0, default=2)
    assert n == 1 and "busy" in why and "5.0" in why
    assert choose_threads(None, cores=1, load=4.0, default=1)[0] == 1


def test_default_learning_rates_by_preset_shape() -> None:
    from gptbert.compare import CandidateSpec, default_lrs

    assert default_lrs(CandidateSpec(name="b", source="bert-mini")) == (2e-4, 3e-4)  # post-LN, 256 wide
    assert default_lrs(CandidateSpec(name="t", source="bert-tiny")) == (1e-3, 1e-3)  # post-LN, 128 wide
    assert default_lrs(CandidateSpec(name="g", source="gpt-mini")) == (1e-3, 1e-3)  # pre-LN
    assert default_lrs(CandidateSpec(name="e", source="elmo-small")) == (1e-3, 1e-3)
    assert default_lrs(CandidateSpec(name="c", source="/some/checkpoint")) == (1e-4, 1e-4)
