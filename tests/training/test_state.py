"""Tests of gptbert.training.state: atomic checkpoints, weights with tied tensors, exact resume."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from gptbert.io.layout import CHECKPOINT_FILE, WEIGHTS_FILE
from gptbert.training import Callback, fit, load_checkpoint, load_model_weights, save_model_weights
from tests.training._train_helpers import (
    REPO,
    SHAKESPEARE,
    collate,
    make_model,
    read_metrics,
    scramble_rngs,
    targs,
    toy_run,
    train_losses,
)


def test_checkpoint_atomic_and_never_replaced_by_a_broken_write(train_set, vocab_size, tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    stale = out / f".{CHECKPOINT_FILE}.tmp-99999-deadbeef"  # what a writer killed mid-write leaves
    stale.write_bytes(b"half a file")
    model = make_model(vocab_size, 0, 0.1)
    fit(model, targs(max_steps=4, save_every=2, out_dir=str(out)), train_set, collate)
    names = sorted(p.name for p in out.rglob("*"))
    assert not [n for n in names if ".tmp-" in n], names
    good = (out / CHECKPOINT_FILE).read_bytes()
    assert load_checkpoint(out / CHECKPOINT_FILE)["progress"]["step"] == 4

    import safetensors.torch

    real_save = safetensors.torch.save_file

    def failing_save(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 100)  # a partial file, then the disk "fills up"
        raise OSError("No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", failing_save)
    with pytest.raises(OSError, match="No space"):
        fit(make_model(vocab_size, 0, 0.1), targs(max_steps=6, save_every=2, out_dir=str(out), resume=True),
            train_set, collate)
    with pytest.raises(OSError, match="No space"):
        save_model_weights(out / WEIGHTS_FILE, model)
    monkeypatch.setattr(safetensors.torch, "save_file", real_save)
    assert (out / CHECKPOINT_FILE).read_bytes() == good
    assert not [p.name for p in out.rglob("*") if ".tmp-" in p.name]
    fresh = make_model(vocab_size, 5, 0.1)
    load_model_weights(fresh, out / WEIGHTS_FILE)  # the earlier final model is intact too
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))

    (out / CHECKPOINT_FILE).write_bytes(good[: len(good) // 2])  # truncated by something else
    with pytest.raises(RuntimeError, match="not a readable safetensors file"):
        load_checkpoint(out / CHECKPOINT_FILE)
    with pytest.raises(RuntimeError, match="not a readable safetensors file"):
        fit(make_model(vocab_size, 0, 0.1), targs(max_steps=6, out_dir=str(out), resume=True), train_set, collate)


def test_save_load_tied_weights(tmp_path):
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(7, 4)
            self.head = nn.Linear(4, 7, bias=False)
            self.head.weight = self.emb.weight

    a, b = Tied(), Tied()
    save_model_weights(tmp_path / "m.safetensors", a, metadata={"note": {"x": 1}})
    meta = load_model_weights(b, tmp_path / "m.safetensors")
    assert json.loads(meta["note"]) == {"x": 1}
    assert json.loads(meta["gptbert.tied"]) == {"head.weight": "emb.weight"}  # gptbert.io.weights' convention
    assert torch.equal(a.emb.weight, b.emb.weight) and b.head.weight is b.emb.weight


def test_resume_is_exact_after_sigkill(shared_data, tmp_path):
    """Kill a training subprocess for real after a checkpoint, resume: per-step losses match bitwise."""
    data = shared_data / SHAKESPEARE
    steps = 24
    ref_model, ref = toy_run(data, tmp_path / "A", max_steps=steps, dropout=0.1)  # uninterrupted
    out = tmp_path / "B"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "training" / "_train_helpers.py"), "run", "--data", str(data),
         "--out", str(out), "--max-steps", str(steps), "--save-every", "4", "--step-sleep", "0.15"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        step = 0
        while step < 8:
            assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the training subprocess made no checkpoint in time"
            time.sleep(0.05)
            if (out / CHECKPOINT_FILE).exists():
                step = load_checkpoint(out / CHECKPOINT_FILE)["progress"]["step"]
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    killed_at = load_checkpoint(out / CHECKPOINT_FILE)["progress"]["step"]
    assert 8 <= killed_at < steps
    scramble_rngs()
    model, res = toy_run(data, out, max_steps=steps, dropout=0.1, resume=True)
    assert res.steps == steps and res.stop_reason == "max_steps"
    expected = train_losses(ref.history)
    assert len(expected) == steps
    assert train_losses(res.history) == expected  # exact float equality, every step
    assert train_losses(read_metrics(out)) == expected  # records the killed run wrote late were dropped
    for (name, a), b in zip(ref_model.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name


def test_sigterm_saves_and_returns_interrupted(train_set, vocab_size, tmp_path):
    class TermAt(Callback):
        def on_step_end(self, state, loss):
            if state.step == 5:
                os.kill(os.getpid(), signal.SIGTERM)

    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    args = targs(max_steps=12, out_dir=str(tmp_path / "B"), log_every=3)  # interrupted mid-window
    ref_model = make_model(vocab_size, 0, 0.1)
    ref = fit(ref_model, targs(max_steps=12, log_every=3), train_set, collate)

    res = fit(make_model(vocab_size, 0, 0.1), args, train_set, collate, callbacks=[TermAt()])
    assert res.stop_reason == "interrupted" and res.steps == 5
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    assert load_checkpoint(tmp_path / "B" / CHECKPOINT_FILE)["progress"]["step"] == 5
    assert not (tmp_path / "B" / WEIGHTS_FILE).exists()  # no "final" model for an interrupted run

    scramble_rngs()
    model = make_model(vocab_size, 7, 0.1)  # different initial weights: the checkpoint must overwrite them
    res2 = fit(model, dataclasses.replace(args, resume=True), train_set, collate)
    assert res2.stop_reason == "max_steps" and res2.steps == 12
    assert train_losses(res2.history) == train_losses(ref.history)  # same records, same values
    assert [r["step"] for r in res2.history] == [3, 6, 9, 12]
    for a, b in zip(ref_model.parameters(), model.parameters()):
        assert torch.equal(a, b)
