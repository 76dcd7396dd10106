"""Pre-training and fine-tuning end to end through the CLI and the recipes, on real data; the
recipes' errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gptbert import recipes
from gptbert.cli import main
from gptbert.run import load_run
from gptbert.training import TrainArgs
from tests.tasks import _runs


@pytest.fixture(scope="module")
def small_corpus(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 1,500 real Rotten Tomatoes snippets."""
    lines = (shared_data / "sst2" / "rt_snippets.txt").read_text(encoding="utf-8").splitlines()[:1500]
    path = tmp_path_factory.mktemp("corpus") / "rt.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sst2_small(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    rows = (shared_data / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()
    d = tmp_path_factory.mktemp("sst2")
    (d / "train.tsv").write_text("\n".join(rows[:401]) + "\n", encoding="utf-8")
    return d / "train.tsv", shared_data / "sst2" / "dev.tsv"


def _args(**kw) -> TrainArgs:
    base = dict(batch_size=16, max_steps=6, lr=1e-3, progress=False, log_every=2, seed=0)
    base.update(kw)
    return TrainArgs(**base)


@pytest.fixture(scope="module")
def bert_run(small_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gptbert.recipes import pretrain

    out = tmp_path_factory.mktemp("runs") / "bert"
    pretrain("bert-tiny", [str(small_corpus)], out, _args(max_steps=8), vocab_size=800, max_len=48)
    return out


def test_bert_pretrain_run_directory(bert_run: Path) -> None:
    for name in ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "task.json",
                 "metrics.json", "train_args.json", "metrics.jsonl"):
        assert (bert_run / name).is_file(), name
    run = load_run(bert_run)
    assert run.config.family == "bert" and run.config.head == "pretrain"
    assert run.task.task == "pretrain" and run.task.options.objective == "mlm+nsp"
    dev = json.loads((bert_run / "metrics.json").read_text())["dev"]
    assert 0.0 <= dev["mlm_accuracy"] <= 1.0 and 0.0 <= dev["nsp_accuracy"] <= 1.0
    assert run.tokenizer is not None and run.tokenizer.vocab_size == run.config.vocab_size


def test_mlm_loss_falls_during_pretraining(bert_run: Path) -> None:
    records = [json.loads(line) for line in (bert_run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r and r.get("kind", "train") == "train"]
    assert len(losses) >= 2 and losses[-1] < losses[0]


@pytest.mark.parametrize("preset,objective", [("gpt-nano", "causal-lm"), ("elmo-small", "bidirectional-lm")])
def test_pretrain_gpt_and_elmo(preset: str, objective: str, small_corpus: Path, tmp_path: Path) -> None:
    from gptbert.recipes import pretrain

    overrides = {"n_embd": 64, "intermediate_size": 128, "use_char_cnn": False} if preset.startswith("elmo") else None
    out, result = pretrain(preset, [str(small_corpus)], tmp_path / preset, _args(max_steps=4), vocab_size=500,
                           max_len=32, overrides=overrides, cache_root=tmp_path / "cache")
    run = load_run(out)
    assert run.task.options.objective == objective
    assert result.steps == 4 and result.tokens > 0
    keys = {"perplexity"} if preset.startswith("gpt") else {"fwd_perplexity", "bwd_perplexity"}
    assert keys <= set(result.eval_metrics)


def test_finetune_from_pretrained_run_keeps_backbone(bert_run: Path, sst2_small: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    from gptbert.recipes import finetune

    train, dev = sst2_small
    out, result, extra = finetune(str(bert_run), "classify", str(train), tmp_path / "ft", _args(max_steps=3),
                                  dev_path=str(dev), max_len=48)
    run = load_run(out)
    assert run.config.head == "classify" and run.labels == ["0", "1"]
    pre = load_run(bert_run).model.state_dict()
    # the fine-tuned model started from the pre-trained embeddings (a few steps move them only a little)
    diff = (run.model.state_dict()["embeddings.wte.weight"] - pre["embeddings.wte.weight"]).abs().max()
    assert diff < 0.05
    assert extra["dev"]["n"] == 872 and 0.0 <= extra["dev"]["accuracy"] <= 1.0


def test_cli_finetune_preset_from_scratch_and_refuses_nonempty_out(sst2_small: tuple[Path, Path], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    train, _ = sst2_small
    out = tmp_path / "gpt"
    argv = ["finetune", "--model", "gpt-nano", "--task", "classify", "--train", str(train), "--out", str(out),
            "--vocab-size", "400", "--max-len", "32", "--max-steps", "3", "--batch-size", "8", "--no-progress", "--json"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["steps"] == 3 and "accuracy" in printed["dev"]
    assert load_run(out).config.family == "gpt"
    assert main(argv) == 2  # non-empty --out without --force
    assert "not empty" in capsys.readouterr().err


def test_finetune_reports_bad_rows_with_file_and_line(shared_data: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["finetune", "--model", "bert-tiny", "--train", str(shared_data / "banking77" / "train.tsv"),
            "--out", str(tmp_path / "b77"), "--max-steps", "1", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "train.tsv:" in err and "13" in err


def test_with_head_transfers_backbone_exactly(bert_run: Path) -> None:
    from gptbert.run import with_head

    model = load_run(bert_run).model
    clf = with_head(model, "classify", num_labels=3)
    a, b = model.state_dict(), clf.state_dict()
    for name in ("embeddings.wte.weight", "blocks.1.attn.qkv.weight", "pooler.dense.weight"):
        torch.testing.assert_close(a[name], b[name])
    assert clf.task is not None and clf.task.out.out.out_features == 3


def test_errors_name_the_problem(runs_root, shared_data, tmp_path):
    gpt = _runs.pretrain_run(runs_root, shared_data, "gpt")
    with pytest.raises(FileNotFoundError, match="no such file"):
        recipes.evaluate(gpt["path"], tmp_path / "missing.txt")
    tokens_run = _runs.tokens_run(runs_root, shared_data, "bert")
    (tmp_path / "t.txt").write_text("some text\n")
    with pytest.raises(ValueError, match="needs an LM head"):
        recipes.evaluate(tokens_run["path"], tmp_path / "t.txt")
    with pytest.raises(ValueError, match="unknown task 'ner'"):
        recipes.finetune("bert-tiny", "ner", "x", tmp_path / "o", _runs.train_args(1))
    with pytest.raises(ValueError, match="ELMo has no generation"):
        recipes.finetune("elmo-small", "generate", str(_runs.pair_files(runs_root, shared_data)["train"]),
                         tmp_path / "o", _runs.train_args(1))


def test_cli_finetune_prints_a_summary(sst2_small: tuple[Path, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    train, _ = sst2_small
    out = tmp_path / "bert"
    assert main(["finetune", "--model", "bert-tiny", "--train", str(train), "--out", str(out), "--vocab-size", "400",
                 "--max-steps", "3", "--batch-size", "8", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"fine-tuned bert-tiny on {train} (classify)")
    assert "3 steps in" in text and "dev accuracy" in text and "rows)" in text and f"run: {out}" in text
    assert "recipe" in text and "preset: lr 0.001" in text  # bert-tiny: a 128-wide post-LN preset
    assert "{" not in text
