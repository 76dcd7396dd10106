"""The budget-aware fine-tuning recipe: what it plans, why, and that it never overrides the user."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from gptbert import finetune_recipe as fr
from gptbert.config import ModelConfig
from gptbert.training import TrainArgs


@pytest.fixture(scope="module")
def banking_tsv(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """8 banking77 intents, 20 training and up to 10 dev queries each, as TSV files."""
    from gptbert.data.readers import read_task_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = read_task_file(shared_data / "banking77" / "train.tsv", skip_bad_rows=True)
    dev = read_task_file(shared_data / "banking77" / "dev.tsv")
    keep = sorted(set(train.labels))[:8]
    out = tmp_path_factory.mktemp("banking8")
    for name, data, k in (("train", train, 20), ("dev", dev, 10)):
        count = dict.fromkeys(keep, 0)
        rows = ["text\tlabel"]
        for t, lab in zip(data.texts, data.labels):
            if lab in count and count[lab] < k:
                count[lab] += 1
                rows.append(f"{t}\t{lab}")
        (out / f"{name}.tsv").write_text("\n".join(rows) + "\n")
    return out / "train.tsv", out / "dev.tsv"


def test_plan_for_a_pretrained_classifier_and_for_a_preset() -> None:
    bert = ModelConfig.from_name("minilm-l6")
    p = fr.plan("classify", bert, pretrained=True, n_train=9000, max_len=56, pooling="mean", pooling_from="1_Pooling")
    assert (p.kind, p.lr, p.head_lr, p.pooling, p.probe, p.freeze_embeddings) == (
        "pretrained", 1e-4, 1e-3, "mean", True, True)
    assert p.max_len == 56 and p.group_by_length and p.eval_every == 200
    assert "mean pooling (1_Pooling)" in p.reasons["pooling"] and "logistic regression" in p.reasons["probe"]
    trained = fr.plan("classify", bert, pretrained=True, n_train=90, max_len=32, has_trained_head=True,
                      pooling="mean")
    assert not trained.probe and trained.eval_every == 3  # 90 examples: one evaluation per epoch
    tiny = fr.plan("classify", ModelConfig.from_name("bert-tiny"), pretrained=False, n_train=100, max_len=32)
    mini = fr.plan("classify", ModelConfig.from_name("bert-mini"), pretrained=False, n_train=100, max_len=32)
    assert (tiny.lr, mini.lr) == (1e-3, 2e-4) and not tiny.probe and not tiny.freeze_embeddings
    tokens = fr.plan("tokens", bert, pretrained=True, n_train=100, max_len=32)
    assert tokens.pooling is None and not tokens.probe


def test_train_args_never_override_what_the_user_set() -> None:
    p = fr.plan("classify", ModelConfig.from_name("minilm-l6"), pretrained=True, n_train=900, max_len=40,
                pooling="mean")
    args = fr.train_args(p, TrainArgs(lr=5e-5, batch_size=8, max_steps=10), explicit={"lr", "batch_size"})
    assert (args.lr, args.batch_size) == (5e-5, 8)  # given
    assert (args.head_lr, args.group_by_length, args.warmup_ratio, args.patience) == (1e-3, True, 0.06, 3)  # planned


def test_max_len_from_the_data() -> None:
    class Tok:
        def encode_batch(self, texts, pairs=None, max_length=None, padding=None):  # noqa: ANN001, ANN201
            class E:
                ids = [[0] * min(len(t.split()) + 2, max_length) for t in texts]
            return E()

    texts = ["w " * n for n in range(1, 101)]  # 3 .. 102 tokens
    assert fr.data_max_len(Tok(), texts, None, 512) == 104  # p99 = 101 tokens, rounded up to 8
    assert fr.data_max_len(Tok(), texts, None, 64) == 64  # at most the block size
    assert fr.data_max_len(Tok(), ["a"] * 10, None, 512) == fr.MIN_MAX_LEN


def test_pooling_follows_the_checkpoint_files(minilm_dir: Path, tmp_path: Path) -> None:
    config = ModelConfig.from_name("minilm-l6")
    pooling, where = fr.source_pooling(str(minilm_dir), config)
    assert pooling == "mean" and "1_Pooling" in where
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json"):
        if (minilm_dir / name).exists():
            (bare / name).symlink_to(minilm_dir / name)
    assert fr.source_pooling(str(bare), config) == ("mean", "the bert default")
    cls_copy = tmp_path / "cls"
    shutil.copytree(minilm_dir / "1_Pooling", cls_copy / "1_Pooling")
    for name in ("config.json", "model.safetensors", "vocab.txt", "modules.json"):
        (cls_copy / name).symlink_to(minilm_dir / name)
    cfg = json.loads((cls_copy / "1_Pooling" / "config.json").read_text())
    cfg.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (cls_copy / "1_Pooling" / "config.json").write_text(json.dumps(cfg))
    assert fr.source_pooling(str(cls_copy), config)[0] == "cls"


def test_linear_probe_then_fine_tune_on_minilm(minilm_dir: Path, banking_tsv: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    from gptbert.recipes import finetune
    from gptbert.run import load_run

    train, dev = banking_tsv
    out, result, extra = finetune(str(minilm_dir), "classify", str(train), tmp_path / "run",
                                  TrainArgs(max_steps=3, progress=False, tensorboard=False), dev_path=str(dev),
                                  recipe="auto", explicit={"max_steps"})
    plan = extra["recipe"]
    assert plan.kind == "pretrained" and plan.probe and plan.probe_result["examples"] == 160
    assert plan.max_len < 64  # banking77 queries are short
    run = load_run(out)
    assert run.config.pooling == "mean" and run.config.pool_normalize
    saved = json.loads((out / "metrics.json").read_text())["recipe"]
    assert saved["probe"] and saved["reasons"]["pooling"].startswith("mean pooling")
    # 3 steps from the probe's head: already far above chance (1/8) on dev
    assert extra["dev"]["accuracy"] > 0.6
    args = json.loads((out / "train_args.json").read_text())
    assert args["head_lr"] == pytest.approx(1e-3) and args["group_by_length"] and args["max_steps"] == 3


def test_prepare_freezes_the_word_embeddings_and_sets_the_probe(minilm_dir: Path, banking_tsv: tuple[Path, Path]
                                                                ) -> None:
    from gptbert.run import load_run, with_head
    from gptbert.tasks import TASKS
    from gptbert.tasks.classify import predict_proba

    run = load_run(minilm_dir)
    data = TASKS["classify"].load_data(str(banking_tsv[0]), str(banking_tsv[1]), TASKS["classify"].options_type())
    model = with_head(run.model, "classify", num_labels=8)
    plan = fr.plan("classify", model.config, pretrained=True, n_train=len(data.train), max_len=48, pooling="mean")
    torch.manual_seed(0)
    model = fr.prepare(plan, model, run.tokenizer, data.train, 8, budget_s=60.0)
    assert not model.embeddings.wte.weight.requires_grad
    assert model.blocks[0].attn.qkv.weight.requires_grad
    probs = predict_proba(model.eval(), run.tokenizer, data.train, max_len=48)
    train_acc = float(np.mean(probs.argmax(1) == np.array([it[2] for it in data.train])))
    assert train_acc > 0.9  # the head is the probe fitted on these sentence vectors
