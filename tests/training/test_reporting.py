"""Tests of gptbert.training.reporting: metrics.jsonl, TensorBoard, progress on stderr."""

from __future__ import annotations

import importlib.util
import json
import math
import types

import torch

from gptbert.io.layout import BEST_DIR, WEIGHTS_FILE
from gptbert.training import fit
from tests.training._train_helpers import collate, make_model, read_metrics, targs


def test_metrics_jsonl_and_tensorboard(train_set, dev_set, vocab_size, tmp_path):
    out = tmp_path / "run"
    dev = torch.utils.data.Subset(dev_set, range(40))
    model = make_model(vocab_size, 0, 0.1)
    model.config = types.SimpleNamespace(to_dict=lambda: {"vocab_size": vocab_size})  # like gptbert models
    res = fit(model, targs(max_steps=8, log_every=2, eval_every=4, out_dir=str(out), tensorboard=True,
                           grad_clip=0.0), train_set, collate, dev_data=dev)
    records = read_metrics(out)
    assert records == json.loads(json.dumps(res.history))
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in train] == [2, 4, 6, 8] and [r["step"] for r in evals] == [4, 8]
    for r in train:
        assert set(r) == {"kind", "step", "epoch", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "elapsed"}
        assert r["tokens"] == r["step"] * 8 * 32 and r["tokens_per_s"] > 0 and r["grad_norm"] > 0
        assert 0 < r["epoch"] < 1 and math.isfinite(r["loss"])
    for r in evals:
        assert {"eval_loss", "best", "eval_seconds", "elapsed", "epoch"} <= set(r)
    assert evals[-1]["eval_loss"] == res.eval_metrics["loss"]
    for directory in (out, out / BEST_DIR):  # loadable model directories: weights + config
        assert (directory / WEIGHTS_FILE).exists()
        assert json.loads((directory / "config.json").read_text()) == {"vocab_size": vocab_size}
    if importlib.util.find_spec("tensorboard") is not None:
        assert list((out / "tb").glob("events.out.tfevents.*"))
    else:
        assert not (out / "tb").exists()

