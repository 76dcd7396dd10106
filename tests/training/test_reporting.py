"""Tests of gptbert.training.reporting: metrics.jsonl, TensorBoard, progress on stderr."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import types

import pytest
import torch

from gptbert.io.layout import BEST_DIR, WEIGHTS_FILE
from gptbert.training import fit
from gptbert.training.reporting import ProgressDisplay, progress_line
from tests.training._train_helpers import collate, make_model, read_metrics, targs, train_losses


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


def test_progress_line_format():
    line = progress_line(step=120, total=1000, loss=2.34123, lr=2.95e-4, tokens_per_s=5123.4, elapsed=62)
    assert line == "step 120/1000 (12%)  loss 2.3412  lr 2.95e-04  5123 tok/s  elapsed 1m02s  eta 7m35s"
    unknown = progress_line(step=3, total=math.inf, loss=1.0, lr=1e-3, tokens_per_s=0.0, elapsed=5)
    assert unknown == "step 3  loss 1.0000  lr 1.00e-03  0 tok/s  elapsed 5s"  # no total yet: no ETA


@pytest.mark.parametrize("progress", [True, False])
def test_plain_progress_lines_when_stderr_is_not_a_terminal(train_set, vocab_size, capsys, progress):
    """stderr redirected (here: captured, not a TTY): a plain line per interval, none with --no-progress."""
    data = torch.utils.data.Subset(train_set, range(64))
    res = fit(make_model(vocab_size, 0, 0.1), targs(max_steps=4, progress=progress, progress_interval=0), data,
              collate)
    lines = capsys.readouterr().err.splitlines()
    if not progress:
        assert lines == []
        return
    assert [line.split("  ")[0] for line in lines] == [f"step {k}/4 ({25 * k}%)" for k in range(1, 5)]
    for line, (_, loss, lr) in zip(lines, train_losses(res.history)):  # log_every=1: the step's own loss
        assert f"loss {loss:.4f}" in line and f"lr {lr:.2e}" in line and " tok/s " in line and " eta " in line


def test_progress_display_waits_for_its_interval():
    stream = io.StringIO()  # not a terminal
    display = ProgressDisplay(enabled=True, step=0, total=10, interval=3600, stream=stream)
    for step in range(1, 4):
        display.step(step=step, total=10, loss=torch.tensor(1.0), lr=1e-3, tokens_per_s=1.0, elapsed=float(step))
    display.close()
    assert stream.getvalue() == "" and display.bar is None
