"""``gptbert compare`` and ``gptbert demo`` end to end, in-process, on tiny budgets and data subsets."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gptbert.cli import main
from gptbert.compare import DEMO_DIR
from gptbert.results import CandidateResult, Comparison, LatencyStats, Quality, ResultsStore, load_results_json

TINY_ELMO = "elmo=elmo-small:use_char_cnn=false:n_layer=1:n_embd=32:intermediate_size=64"


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def head_lines(src: Path, dst: Path, n: int) -> Path:
    with src.open(encoding="utf-8") as f:
        lines = [next(f) for _ in range(n)]
    dst.write_text("".join(lines), encoding="utf-8")
    return dst


def tiny_args(out: Path, db: Path) -> list[str]:
    return ["--budget", "4s", "--max-len", "32", "--vocab-size", "300", "--latency-repeats", "3",
            "--precision", "fp32,bf16", "--out", str(out), "--db", str(db), "--no-progress"]


@pytest.fixture(scope="module")
def first(tmp_path_factory) -> dict[str, Any]:
    """Three families pre-trained and fine-tuned on a slice of the demo data, plus a broken candidate."""
    tmp = tmp_path_factory.mktemp("compare1")
    corpus = head_lines(DEMO_DIR / "corpus.txt", tmp / "corpus.txt", 400)
    out, db = tmp / "out", tmp / "runs.db"
    (tmp / "nope").mkdir()  # exists, but is no checkpoint: that candidate fails, the others run
    argv = ["compare", "--train", str(DEMO_DIR / "train.tsv"), "--dev", str(DEMO_DIR / "dev.tsv"),
            "--max-train", "96", "--pretrain-corpus", str(corpus),
            "--candidates", f"bert-tiny,gpt-nano,{TINY_ELMO}", "--candidates", str(tmp / "nope"),
            "--measure-in-process", *tiny_args(out, db)]
    rc, stdout, stderr = run_cli(argv)
    return {"rc": rc, "out": out, "db": db, "stdout": stdout, "stderr": stderr, "tmp": tmp}


@pytest.fixture(scope="module")
def second(first, shared_data, tmp_path_factory) -> dict[str, Any]:
    """Real SST-2 slices; a preset and the first run's fine-tuned GPT as a checkpoint; fresh-process inference."""
    tmp = tmp_path_factory.mktemp("compare2")
    sst = shared_data / "sst2"
    dev = head_lines(sst / "dev.tsv", tmp / "dev.tsv", 101)
    lines = (sst / "dev.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    test = tmp / "test.tsv"
    test.write_text(lines[0] + "".join(lines[101:181]), encoding="utf-8")
    ckpt = first["out"] / "candidates" / "gpt-nano"
    out = tmp / "out"
    argv = ["compare", "--train", str(sst / "train.tsv"), "--dev", str(dev), "--test", str(test),
            "--max-train", "64", "--candidates", f"bert-tiny,ckpt={ckpt}", *tiny_args(out, first["db"])]
    argv[argv.index("--budget") + 1] = "2s"
    rc, stdout, stderr = run_cli(argv)
    return {"rc": rc, "out": out, "stdout": stdout, "stderr": stderr}


def test_compare_end_to_end(first):
    assert first["rc"] == 0, first["stderr"][-3000:]
    out = first["out"]
    names = ["bert-tiny", "gpt-nano", "elmo", "nope"]
    for f in ("report.md", "report.html", "results.json"):
        text = (out / f).read_text(encoding="utf-8")
        for name in names:
            assert name in text, (f, name)
    comp = load_results_json(out)
    assert [c.name for c in comp.candidates] == names
    assert [c.family for c in comp.candidates] == ["bert", "gpt", "elmo", "other"]
    assert comp.task == "classify" and comp.precisions == ["fp32", "bf16"]
    assert "pre-training 2s" in (comp.budget or "") and "fine-tuning 2s" in (comp.budget or "")
    assert comp.dataset_profile["train"]["n_examples"] == 96 and comp.dataset_profile["dev"]["n_examples"] == 400
    assert comp.dataset_profile["baselines"]["majority_dev_accuracy"] == pytest.approx(209 / 400)
    assert comp.hardware.get("cpu_model") is not None and "load_average_1m_start" in comp.hardware
    for c in comp.candidates[:3]:
        assert c.ok, c.error
        q = c.quality
        assert q is not None and q.metric == "accuracy" and 0.0 <= q.dev <= 1.0
        assert q.dev_ci is not None and q.dev_ci[0] <= q.dev <= q.dev_ci[1]
        assert 0.0 <= c.extra["dev_macro_f1"] <= 1.0
        assert 0 < c.n_params_non_embedding < c.n_params
        assert set(c.size_mb) == {"fp32", "bf16", "int8"} and c.size_mb["bf16"] == pytest.approx(c.size_mb["fp32"] / 2)
        assert c.extra["saved_size_mb"]["fp32"] >= c.size_mb["fp32"] * 0.9
        for phase in (c.pretrain, c.finetune):
            assert phase is not None and phase.steps >= 1 and phase.wall_s > 0 and phase.tokens_per_s > 0
        assert set(c.latency) == {"fp32", "bf16"} and set(c.throughput) == {"fp32", "bf16"}
        assert all(lat.n == 3 and 0 < lat.p50_ms <= lat.p95_ms for lat in c.latency.values())
        assert len(c.latency_samples["fp32"]) == 3
        assert c.peak_rss_mb["train"] > 0 and c.peak_rss_mb["inference"] > 0
        assert {p.get("phase") for p in c.curves} == {"pretrain", "finetune"}
        assert set(c.extra["dev_accuracy_by_precision"]) == {"fp32", "bf16"}
        run_dir = Path(c.extra["run_dir"])
        assert run_dir.parent == out / "candidates" and (run_dir / "model.safetensors").is_file()
        assert (run_dir / "pretrain" / "model.safetensors").is_file()
    gpt = comp.candidate("gpt-nano")
    assert gpt.can_generate and gpt.decode_tokens_per_s is not None and gpt.decode_tokens_per_s > 0
    assert comp.candidate("bert-tiny").decode_tokens_per_s is None
    elmo = comp.candidate("elmo")
    assert elmo.source == "elmo-small" and "word embeddings" in elmo.extra["architecture"]
    # Shared tokenizers: one WordPiece for BERT and ELMo, one BPE for GPT.
    assert (out / "tokenizers" / "wordpiece").is_dir() and (out / "tokenizers" / "bpe").is_dir()
    assert comp.candidate("bert-tiny").extra["tokenizer"] == elmo.extra["tokenizer"]
    assert comp.candidate("bert-tiny").extra["tokenizer"].startswith("wordpiece")


def test_broken_candidate_is_reported_and_the_others_run(first):
    comp = load_results_json(first["out"])
    bad = comp.candidate("nope")
    assert bad.status == "failed" and "not a gptbert or Hugging Face checkpoint" in bad.error and bad.quality is None
    assert sum(c.ok for c in comp.candidates) == 3
    assert "[4/4 nope] failed" in first["stderr"]
    md = (first["out"] / "report.md").read_text(encoding="utf-8")
    assert "**nope** (failed)" in md


def test_progress_lines_per_candidate_and_phase(first):
    err = first["stderr"]
    assert "[1/4 bert-tiny] pre-train (MLM+NSP, budget 2s) ..." in err
    assert "[1/4 bert-tiny] fine-tune (budget 2s, recipe auto) ..." in err
    assert "[2/4 gpt-nano] pre-train (causal LM, budget 2s) ..." in err
    assert "[3/4 elmo] pre-train (forward+backward LM, budget 2s) ..." in err
    assert "[3/4 elmo] measure inference (fp32, bf16" in err
    assert re.search(r"\[1/4 bert-tiny\] done in \d+ s: dev accuracy \d\.\d{3}", err)


def test_recommendation_cites_numbers_and_reports_are_listed(first):
    out = first["stdout"]
    assert "Recommendation:" in out
    assert re.search(r"accuracy \d\.\d{3} on dev \(95% CI \d\.\d{3}-\d\.\d{3}\)", out)
    assert re.search(r"p95 latency [\d.]+ ms", out)
    assert "nope: failed" in out  # excluded, with the reason
    for f in ("report.md", "report.html", "results.json"):
        assert str(first["out"] / f) in out
    assert "candidate" in out.splitlines()[1] and "dev acc [95% CI]" in out


def test_results_json_round_trips(first):
    text = (first["out"] / "results.json").read_text(encoding="utf-8")
    data = json.loads(text)
    assert Comparison.from_dict(data).to_dict() == data
    assert load_results_json(first["out"]).to_dict() == data


def test_second_run_on_sst2_accumulates_in_the_store(first, second):
    assert second["rc"] == 0, second["stderr"][-3000:]
    comp = load_results_json(second["out"])
    assert [c.name for c in comp.candidates] == ["bert-tiny", "ckpt"] and all(c.ok for c in comp.candidates)
    assert comp.budget == "2s per candidate (fine-tuning)"
    ckpt = comp.candidate("ckpt")
    assert ckpt.family == "gpt" and ckpt.pretrain is None and ckpt.extra["tokenizer"] == "the checkpoint's own"
    for c in comp.candidates:
        assert c.quality.test is not None and c.quality.test_ci is not None
        assert c.extra["inference"]["measured_in"] == "a fresh process"
        assert c.peak_rss_mb["inference"] > 0 and c.latency["fp32"].n == 3
    assert "[1/2 bert-tiny] fine-tune (budget 2s, recipe auto) ..." in second["stderr"]
    assert "pre-train" not in second["stderr"]
    store = ResultsStore(first["db"])
    assert len(store.list()) == 2
    with sqlite3.connect(first["db"]) as conn:
        rows = conn.execute("SELECT name, status FROM candidates ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["bert-tiny", "gpt-nano", "elmo", "nope", "bert-tiny", "ckpt"]
    assert [r[1] for r in rows].count("failed") == 1


def test_demo_check_fails_on_a_failed_candidate(tmp_path):
    (tmp_path / "missing").mkdir()  # there, but no checkpoint: the candidate fails when it runs
    rc, out, err = run_cli(["demo", "--candidates", str(tmp_path / "missing"), "--out", str(tmp_path / "o"),
                            "--no-db", "--no-progress"])
    assert rc == 1, err[-2000:]
    assert "demo check FAILED" in err and "missing failed" in err and "no candidate has a dev accuracy" in err
    assert (tmp_path / "o" / "report.md").is_file() and not (tmp_path / "runs.db").exists()


@pytest.mark.parametrize("argv, message", [
    (["--task", "tokens", "--train", str(DEMO_DIR / "train.tsv")], "cannot split"),
    (["--task", "qa"], "needs --train"),
    (["--train", str(DEMO_DIR / "train.tsv"), "--candidates", "bert-mini:n_layers=2"], "unknown model setting"),
    (["--dev", str(DEMO_DIR / "dev.tsv")], "need --train"),
    (["--train", str(DEMO_DIR / "train.tsv"), "--pretrain-corpus", str(DEMO_DIR / "corpus.txt"),
      "--budget", "10s", "--pretrain-budget", "10s"], "must be less than --budget"),
    (["--train", str(DEMO_DIR / "train.tsv"), "--precision", "fp32,fp8"], "--precision"),
    (["--train", "/nonexistent/train.tsv"], "no such file"),
    (["--train", str(DEMO_DIR / "train.tsv"), "--compress", "prune-magnitude"], "pruning and distillation need"),
])
def test_compare_user_errors(tmp_path, argv, message):
    rc, _, err = run_cli(["compare", *argv, "--out", str(tmp_path / "o"), "--no-db"])
    assert rc == 2 and message in err, err


@pytest.mark.parametrize("precision, compress, expected", [
    (None, "bf16,int8-dynamic", ["fp32", "bf16", "int8"]),
    ("fp32,bf16", "int8-dynamic", ["fp32", "bf16", "int8"]),
    ("bf16", "bf16", ["bf16"]),
    ("fp32", None, ["fp32"]),
    (None, None, None),
])
def test_compress_variants_join_the_precisions(precision, compress, expected):
    import argparse

    from gptbert.cli.compare import _precisions

    assert _precisions(argparse.Namespace(precision=precision, compress=compress)) == expected


POSITIVE = {"wonderful", "moving", "clever", "gripping", "charming", "delightful", "sharp", "brilliant", "warm",
            "thrilling", "heartfelt", "inventive", "funny", "touching", "superb", "elegant", "memorable", "fresh"}
NEGATIVE = {"dull", "clumsy", "tedious", "lifeless", "forgettable", "messy", "predictable", "flat", "boring",
            "awkward", "shallow", "tiresome", "bland", "confused", "painful", "sloppy", "hollow", "stale", "cheap"}


def conll_from_demo(path: Path, rows: range) -> Path:
    """A small BIO tagging file: the demo sentences with their sentiment words tagged POS / NEG."""
    lines = (DEMO_DIR / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    out = []
    for row in rows:
        for word in lines[row].split("\t")[0].split():
            w = word.lower().strip(",")
            tag = "B-POS" if w in POSITIVE else "B-NEG" if w in NEGATIVE else "O"
            out.append(f"{word} {tag}")
        out.append("")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def test_compare_a_token_task(tmp_path):
    train = conll_from_demo(tmp_path / "train.conll", range(0, 120))
    dev = conll_from_demo(tmp_path / "dev.conll", range(120, 160))
    rc, stdout, stderr = run_cli(["compare", "--task", "tokens", "--train", str(train), "--dev", str(dev),
                                  "--candidates", "bert-tiny,gpt-nano", "--budget", "2s", "--max-len", "32",
                                  "--vocab-size", "300", "--latency-repeats", "3", "--measure-in-process",
                                  "--out", str(tmp_path / "o"), "--no-db", "--no-progress"])
    assert rc == 0, stderr[-3000:]
    comp = load_results_json(tmp_path / "o")
    assert comp.task == "tokens" and sorted(comp.dataset_profile["tags"]) == ["B-NEG", "B-POS", "O"]
    for c in comp.candidates:
        assert c.ok, c.error
        assert c.quality.metric == "entity_f1" and 0.0 <= c.quality.dev <= 1.0 and c.quality.dev_ci is not None
        assert c.extra["inference"]["scope"].startswith("end to end") and c.latency["fp32"].n == 3
        assert "fp32" in c.throughput
    assert comp.candidate("gpt-nano").decode_tokens_per_s is not None
    assert "Recommendation:" in stdout


def test_compare_refuses_a_non_empty_out(tmp_path):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "x").write_text("x")
    rc, _, err = run_cli(["compare", "--train", str(DEMO_DIR / "train.tsv"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "not empty" in err


def test_ctrl_c_keeps_finished_candidates(tmp_path, monkeypatch):
    import gptbert.compare.runner as compare

    def fake_run_candidate(ctx, spec, index, total):
        if index == 2:
            ctx.log.phase = "fine-tune"
            raise KeyboardInterrupt
        return CandidateResult(name=spec.name, family=spec.family(), source=spec.source, task="classify",
                               quality=Quality("accuracy", dev=0.8, dev_ci=(0.7, 0.9)),
                               latency={"fp32": LatencyStats(1.0, 2.0, 1.5, 5)})

    monkeypatch.setattr(compare, "run_candidate", fake_run_candidate)
    out, db = tmp_path / "o", tmp_path / "runs.db"
    rc, stdout, stderr = run_cli(["compare", "--train", str(DEMO_DIR / "train.tsv"), "--max-train", "32",
                                  "--candidates", "a=bert-tiny,b=bert-tiny,c=gpt-nano", "--vocab-size", "300",
                                  "--out", str(out), "--db", str(db)])
    assert rc == 130
    assert "interrupted during fine-tune" in stderr
    comp = load_results_json(out)
    assert [(c.name, c.status) for c in comp.candidates] == [("a", "ok"), ("b", "skipped"), ("c", "skipped")]
    assert comp.candidate("b").error == "interrupted by the user during fine-tune"
    assert "not run" in comp.candidate("c").error
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    assert "Recommendation: a" in stdout
    assert len(ResultsStore(db).list()) == 1


@pytest.mark.slow
def test_minilm_checkpoint_against_a_preset(minilm_dir, shared_data, tmp_path):
    """The real all-MiniLM-L6-v2 (its own WordPiece) against a preset from scratch on SST-2 slices."""
    sst = shared_data / "sst2"
    dev = head_lines(sst / "dev.tsv", tmp_path / "dev.tsv", 201)
    rc, stdout, stderr = run_cli([
        "compare", "--train", str(sst / "train.tsv"), "--dev", str(dev), "--max-train", "2000",
        "--candidates", f"bert-mini,minilm={minilm_dir}", "--budget", "60s", "--max-len", "64",
        "--out", str(tmp_path / "o"), "--no-db", "--no-progress"])
    assert rc == 0, stderr[-3000:]
    comp = load_results_json(tmp_path / "o")
    minilm = comp.candidate("minilm")
    assert minilm.ok and minilm.family == "bert" and minilm.extra["tokenizer"] == "the checkpoint's own"
    assert minilm.n_params > 20_000_000 and minilm.finetune.steps >= 1 and minilm.pretrain is None
    assert 0.0 <= minilm.quality.dev <= 1.0 and minilm.latency["fp32"].p50_ms > 0
    assert comp.candidate("bert-mini").extra["tokenizer"].startswith("wordpiece")


@pytest.mark.slow
def test_full_demo(tmp_path):
    """``gptbert demo`` as ``make demo`` runs it (a few minutes)."""
    rc, stdout, stderr = run_cli(["demo", "--out", str(tmp_path / "o"), "--db", str(tmp_path / "runs.db"),
                                  "--no-progress"])
    assert rc == 0, stderr[-3000:]
    assert "demo check passed" in stdout
    comp = load_results_json(tmp_path / "o")
    assert [c.family for c in comp.candidates] == ["bert", "gpt", "elmo"] and all(c.ok for c in comp.candidates)
