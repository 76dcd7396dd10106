"""Tests of gptbert.train: schedules, optimizer groups, stopping, checkpoints, exact resume, logs."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gptbert.cli._args import add_dataclass_arguments, dataclass_from_args, field_docs
from gptbert.train import (
    BEST_DIR,
    CHECKPOINT_FILE,
    METRICS_FILE,
    MODEL_FILE,
    Callback,
    TrainArgs,
    epoch_batches,
    epoch_indices,
    evaluate_loss,
    fit,
    load_checkpoint,
    load_model_weights,
    lr_at,
    param_groups,
    parse_duration,
    resolve_device,
    save_model_weights,
)
from tests._train_helpers import (
    REPO,
    SHAKESPEARE,
    CharBlocks,
    TinyCharLM,
    collate,
    load_chars,
    make_model,
    random_mask_collate,
    toy_run,
)



@pytest.fixture(scope="module")
def chars(shared_data: Path) -> tuple[torch.Tensor, list[str]]:
    return load_chars(shared_data / SHAKESPEARE, 60_000)


@pytest.fixture(scope="module")
def train_set(chars) -> CharBlocks:
    return CharBlocks(chars[0][:50_000], 32)


@pytest.fixture(scope="module")
def dev_set(chars) -> CharBlocks:
    return CharBlocks(chars[0][50_000:], 32)


@pytest.fixture(scope="module")
def vocab_size(chars) -> int:
    return len(chars[1])


def targs(**kw) -> TrainArgs:
    base = dict(device="cpu", progress=False, tensorboard=False, lr=3e-3, batch_size=8, log_every=1, seed=3)
    base.update(kw)
    return TrainArgs(**base)


def train_losses(history: list[dict]) -> list[tuple[int, float, float]]:
    return [(r["step"], r["loss"], r["lr"]) for r in history if r["kind"] == "train"]


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]


def scramble_rngs() -> None:
    torch.manual_seed(987654)
    np.random.seed(4321)
    random.seed(1234)


# ---- pure functions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [("10m", 600), ("90s", 90), ("1h30m", 5400), ("1.5h", 5400), ("45", 45), (" 2d ", 172800), (2, 2.0),
     ("1h 5s", 3605)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "m", "10m5", "-5s", "0s", "1h-30m", "abc"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


# base 1.0, min 0.1, 10 warmup steps, 110 steps in total (so 100 decay steps).
SCHED = dict(base_lr=1.0, min_lr=0.1, warmup_steps=10, total_steps=110)


@pytest.mark.parametrize(
    "schedule, step, expected",
    [
        ("linear", 0, 0.1), ("cosine", 4, 0.5), ("constant", 9, 1.0), ("exponential", 0, 0.1),
        ("constant", 10, 1.0), ("constant", 500, 1.0),
        ("linear", 10, 1.0), ("linear", 60, 0.55), ("linear", 85, 0.325), ("linear", 110, 0.1), ("linear", 999, 0.1),
        ("cosine", 10, 1.0), ("cosine", 60, 0.55), ("cosine", 35, 0.1 + 0.45 * (1 + math.cos(math.pi / 4))),
        ("cosine", 110, 0.1), ("cosine", 200, 0.1),
    ],
)
def test_lr_at_hand_checked(schedule, step, expected):
    assert lr_at(step, schedule=schedule, gamma=0.5, **SCHED) == pytest.approx(expected, abs=1e-12)


def test_lr_at_exponential_and_edge_cases():
    kw = dict(schedule="exponential", base_lr=1.0, min_lr=0.1, warmup_steps=10, gamma=0.5)
    assert [lr_at(s, **kw) for s in (10, 11, 13, 20)] == [1.0, 0.5, 0.125, 0.1]  # floored at min_lr
    assert lr_at(0, schedule="cosine", base_lr=2.0) == 2.0  # no warmup, unknown total: no decay yet
    assert lr_at(50, schedule="linear", base_lr=1.0, total_steps=None) == 1.0
    assert lr_at(50, schedule="linear", base_lr=1.0, total_steps=math.inf) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        lr_at(0, schedule="step", base_lr=1.0)
    with pytest.raises(ValueError, match="step"):
        lr_at(-1, schedule="linear", base_lr=1.0)


def test_train_args_cli_roundtrip():
    docs = field_docs(TrainArgs)
    missing = [f.name for f in dataclasses.fields(TrainArgs) if f.name not in docs]
    assert not missing, f"fields without a docstring: {missing}"
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, TrainArgs)
    assert "--time-budget" in parser.format_help()  # every help text formats
    ns = parser.parse_args(["--time-budget", "1h30m", "--schedule", "cosine", "--no-progress", "--max-steps", "5",
                            "--precision", "bf16", "--lr", "1e-4", "--out-dir", "/tmp/x", "--metric-mode", "max"])
    args = dataclass_from_args(TrainArgs, ns)
    assert (args.time_budget_s, args.schedule, args.progress, args.max_steps, args.precision, args.lr) == (
        5400.0, "cosine", False, 5, "bf16", 1e-4)
    assert args.max_epochs is None and args.out_dir == "/tmp/x" and args.metric_mode == "max"
    with pytest.raises(SystemExit):
        parser.parse_args(["--schedule", "step"])


@pytest.mark.parametrize(
    "kw, match",
    [(dict(batch_size=0), "batch_size"), (dict(schedule="poly"), "schedule"), (dict(time_budget="soon"), "duration"),
     (dict(min_lr=1.0, lr=0.1), "min_lr"), (dict(device="tpu"), "device"), (dict(resume=True), "out_dir"),
     (dict(max_steps=0), "max_steps")],
)
def test_train_args_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainArgs(**kw)


class _Custom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(8))  # 1-D: no decay
        self.proj = nn.Parameter(torch.randn(8, 8))  # 2-D: decay


def test_param_groups_no_decay_by_type_and_ndim():
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(10, 8)
            self.ln = nn.LayerNorm(8)
            self.lin = nn.Linear(8, 8)
            self.custom = _Custom()
            self.head = nn.Linear(8, 10, bias=False)
            self.head.weight = self.emb.weight  # tied: stays an embedding
            self.frozen = nn.Linear(8, 8)
            self.frozen.requires_grad_(False)

    m = M()
    groups = param_groups(m, 0.1)
    decay = {id(p) for p in groups[0]["params"]}
    no_decay = {id(p) for p in groups[1]["params"]}
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    assert decay == {id(m.lin.weight), id(m.custom.proj)}
    assert no_decay == {id(m.emb.weight), id(m.ln.weight), id(m.ln.bias), id(m.lin.bias), id(m.custom.scale)}
    flat = param_groups(m, 0.1, no_decay_norm_bias_embed=False)
    assert len(flat) == 1 and flat[0]["weight_decay"] == 0.1
    assert {id(p) for p in flat[0]["params"]} == decay | no_decay  # frozen left out, tied once
    with pytest.raises(ValueError, match="trainable"):
        param_groups(nn.Linear(2, 2).requires_grad_(False), 0.1)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")


def test_epoch_indices_seeded_and_sharded():
    a = epoch_indices(11, epoch=0, seed=5)
    assert a == epoch_indices(11, epoch=0, seed=5) and sorted(a) == list(range(11))
    assert a != epoch_indices(11, epoch=1, seed=5)
    assert epoch_indices(5, epoch=0, seed=5, shuffle=False) == [0, 1, 2, 3, 4]
    r0 = epoch_indices(11, epoch=0, seed=5, rank=0, world_size=2)
    r1 = epoch_indices(11, epoch=0, seed=5, rank=1, world_size=2)
    assert len(r0) == len(r1) == 6 and set(r0) | set(r1) == set(range(11))
    assert r0 == a[0::2] and r1 == a[1::2] + a[:1]  # padded by wrapping around
    assert [len(b) for b in epoch_batches(11, epoch=0, seed=5, batch_size=4)] == [4, 4, 3]
    assert [len(b) for b in epoch_batches(11, epoch=0, seed=5, batch_size=4, drop_last=True)] == [4, 4]


# ---- training ---------------------------------------------------------------------------------


def test_grad_accumulation_matches_full_batch(train_set, vocab_size):
    results = []
    for bs, accum in ((8, 1), (4, 2)):
        model = make_model(vocab_size, 0, dropout=0.0)
        res = fit(model, targs(max_steps=3, batch_size=bs, grad_accum=accum), train_set, collate)
        results.append((model, train_losses(res.history)))
    (m1, l1), (m2, l2) = results
    for (s1, a, _), (s2, b, _) in zip(l1, l2):
        assert s1 == s2 and a == pytest.approx(b, rel=1e-5)
    for (name, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
        torch.testing.assert_close(p1, p2, rtol=1e-4, atol=1e-5, msg=name)


def test_loss_decreases_on_tinyshakespeare(train_set, dev_set, vocab_size):
    model = TinyCharLM(vocab_size, dropout=0.1, tuple_logits=True)  # logits come as a tuple
    before = evaluate_loss(model, dev_set, collate, batch_size=64)["loss"]
    res = fit(model, targs(max_steps=150, batch_size=16, schedule="cosine", warmup_steps=10, eval_every=75,
                           log_every=25), train_set, collate, dev_data=dev_set)
    assert before == pytest.approx(math.log(vocab_size), abs=0.3)
    assert res.stop_reason == "max_steps" and res.steps == 150
    assert res.best_metric < 2.7 < before - 1.0
    assert res.eval_metrics["loss"] == pytest.approx(evaluate_loss(model, dev_set, collate, batch_size=64)["loss"])
    losses = [loss for _, loss, _ in train_losses(res.history)]
    assert losses[-1] < losses[0] - 1.0
    # epoch 1: 97 batches of 16 + one of 10 (98 steps); then 52 more steps of 16
    assert len(train_set) == 1562 and res.tokens == 32 * (1562 + 52 * 16) and res.tokens_per_s > 0


def test_bf16_close_to_fp32(train_set, dev_set, vocab_size):
    """bf16 autocast (fp32 master weights) ends within 0.05 nats of fp32 after 60 steps."""
    dev = torch.utils.data.Subset(dev_set, range(128))
    out = {}
    for precision in ("fp32", "bf16"):
        model = make_model(vocab_size, 0, dropout=0.0)
        dtypes = set()

        def loss_fn(m, batch):
            logits, loss = m(**batch)
            dtypes.add(logits.dtype)
            return loss

        res = fit(model, targs(max_steps=60, batch_size=16, precision=precision, log_every=20), train_set, collate,
                  dev_data=dev, loss_fn=loss_fn)
        out[precision] = res.eval_metrics["loss"]
        assert dtypes == {torch.bfloat16 if precision == "bf16" else torch.float32}  # autocast is on
        assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
    assert out["fp32"] < 3.2
    assert abs(out["bf16"] - out["fp32"]) < 0.05, out


def test_time_budget_stop(train_set, vocab_size):
    class Slow(Callback):
        def on_step_end(self, state, loss):
            time.sleep(0.02)

    res = fit(make_model(vocab_size, 0, 0.0), targs(time_budget="1s", schedule="linear"), train_set, collate,
              callbacks=[Slow()])
    assert res.stop_reason == "time_budget" and res.steps >= 2
    lrs = [lr for _, _, lr in train_losses(res.history)]
    assert lrs[0] == 3e-3 and lrs[-1] < lrs[0]  # the schedule decays over the estimated total


@pytest.mark.parametrize("drop_last, steps_per_epoch", [(False, 4), (True, 3)])
def test_max_epochs_stop(train_set, dev_set, vocab_size, drop_last, steps_per_epoch):
    data = torch.utils.data.Subset(train_set, range(50))  # 7 micro-batches of 8 (last: 2), or 6
    evals = []
    res = fit(make_model(vocab_size, 0, 0.1), targs(max_epochs=2, grad_accum=2, drop_last=drop_last), data, collate,
              eval_fn=lambda m: evals.append(1) or {"loss": 1.0})
    assert res.stop_reason == "max_epochs" and res.epochs == 2.0 and res.steps == 2 * steps_per_epoch
    assert [r["step"] for r in res.history if r["kind"] == "eval"] == [steps_per_epoch, 2 * steps_per_epoch]
    assert len(evals) == 2  # eval_every=0: after each epoch, no extra final evaluation


@pytest.mark.parametrize("to_disk", [True, False])
def test_early_stopping_restores_best_weights(train_set, vocab_size, tmp_path, to_disk):
    scores = iter([1.0, 2.0, 1.5, 1.4, 1.3, 1.2])
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    model = make_model(vocab_size, 0, 0.1)

    def eval_fn(m):
        assert not m.training
        snapshots[len(snapshots) * 2 + 2] = {k: v.clone() for k, v in m.state_dict().items()}
        return {"acc": next(scores)}

    out = tmp_path / "run" if to_disk else None
    res_args = targs(max_steps=100, eval_every=2, patience=2, eval_metric="acc", out_dir=out and str(out))
    res = fit(model, res_args, train_set, collate, eval_fn=eval_fn)
    assert res.stop_reason == "early_stopping" and res.steps == 8
    assert (res.best_step, res.best_metric, res.metric_name) == (4, 2.0, "acc")
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[4][k]), k
    assert not torch.equal(snapshots[8]["fc.weight"], snapshots[4]["fc.weight"])
    if to_disk:
        assert json.loads((out / BEST_DIR / "meta.json").read_text())["step"] == 4
        for path in (out / BEST_DIR / MODEL_FILE, out / MODEL_FILE):
            fresh = make_model(vocab_size, 1, 0.1)
            load_model_weights(fresh, path)
            for k, v in fresh.state_dict().items():
                assert torch.equal(v, snapshots[4][k]), (path, k)
        again = fit(make_model(vocab_size, 0, 0.1), dataclasses.replace(res_args, resume=True), train_set, collate,
                    eval_fn=eval_fn)
        assert (again.stop_reason, again.steps, again.best_step) == ("early_stopping", 8, 4)  # nothing more to do


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
        save_model_weights(out / MODEL_FILE, model)
    monkeypatch.setattr(safetensors.torch, "save_file", real_save)
    assert (out / CHECKPOINT_FILE).read_bytes() == good
    assert not [p.name for p in out.rglob("*") if ".tmp-" in p.name]
    fresh = make_model(vocab_size, 5, 0.1)
    load_model_weights(fresh, out / MODEL_FILE)  # the earlier final model is intact too
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
        [sys.executable, str(REPO / "tests" / "_train_helpers.py"), "run", "--data", str(data), "--out", str(out),
         "--max-steps", str(steps), "--save-every", "4", "--step-sleep", "0.15"],
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
    assert not (tmp_path / "B" / MODEL_FILE).exists()  # no "final" model for an interrupted run

    scramble_rngs()
    model = make_model(vocab_size, 7, 0.1)  # different initial weights: the checkpoint must overwrite them
    res2 = fit(model, dataclasses.replace(args, resume=True), train_set, collate)
    assert res2.stop_reason == "max_steps" and res2.steps == 12
    assert train_losses(res2.history) == train_losses(ref.history)  # same records, same values
    assert [r["step"] for r in res2.history] == [3, 6, 9, 12]
    for a, b in zip(ref_model.parameters(), model.parameters()):
        assert torch.equal(a, b)


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
        assert (directory / MODEL_FILE).exists()
        assert json.loads((directory / "config.json").read_text()) == {"vocab_size": vocab_size}
    if importlib.util.find_spec("tensorboard") is not None:
        assert list((out / "tb").glob("events.out.tfevents.*"))
    else:
        assert not (out / "tb").exists()


def test_collate_randomness_is_reproducible_and_independent_of_workers(train_set, vocab_size):
    data = torch.utils.data.Subset(train_set, range(64))
    runs = []
    for workers in (0, 0, 2):
        res = fit(make_model(vocab_size, 0, 0.1), targs(max_steps=6, num_workers=workers), data, random_mask_collate)
        runs.append(train_losses(res.history))
    assert runs[0] == runs[1] == runs[2]


def test_loss_fn_and_output_forms(train_set, vocab_size):
    data = torch.utils.data.Subset(train_set, range(32))
    model = make_model(vocab_size, 0, 0.0)
    calls = []

    def loss_fn(m, batch):
        calls.append(1)
        return m(**batch)[1] * 2.0

    res = fit(model, targs(max_steps=2), data, collate, loss_fn=loss_fn)
    assert len(calls) == 2 and res.steps == 2

    class DictOut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = make_model(vocab_size, 0, 0.0)

        def forward(self, **batch):
            logits, loss = self.inner(**batch)
            return {"logits": logits, "loss": loss}

    assert fit(DictOut(), targs(max_steps=2), data, collate).steps == 2

    def no_targets(examples):
        return {"idx": torch.stack([e["idx"] for e in examples])}

    with pytest.raises(ValueError, match="targets/labels"):
        fit(make_model(vocab_size, 0, 0.0), targs(max_steps=1), data, no_targets)


def test_argument_errors(train_set, vocab_size, tmp_path):
    model = make_model(vocab_size, 0, 0.0)
    with pytest.raises(ValueError, match="max_steps, max_epochs or time_budget"):
        fit(model, targs(), train_set, collate)
    with pytest.raises(ValueError, match="patience"):
        fit(model, targs(max_steps=1, patience=2), train_set, collate)
    with pytest.raises(KeyError, match="acc"):
        fit(model, targs(max_steps=1, eval_metric="acc"), train_set, collate, eval_fn=lambda m: {"f1": 1.0})
    fit(model, targs(max_steps=1, out_dir=str(tmp_path)), train_set, collate)
    with pytest.raises(ValueError, match="batch_size differs"):
        fit(model, targs(max_steps=2, batch_size=4, out_dir=str(tmp_path), resume=True), train_set, collate)
    res = fit(model, targs(max_steps=1, out_dir=str(tmp_path), resume=True), train_set, collate)
    assert res.steps == 1 and res.stop_reason == "max_steps"  # already done: returns at once


@pytest.mark.slow
def test_compile_smoke(train_set, vocab_size):
    res = fit(make_model(vocab_size, 0, 0.1), targs(max_steps=3, compile=True), train_set, collate)
    assert res.steps == 3 and math.isfinite(res.train_loss)
