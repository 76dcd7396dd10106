"""Tests of gptbert.training.fit: accumulation, precision, stopping rules, early stopping, loss forms."""

from __future__ import annotations

import dataclasses
import json
import math
import time

import pytest
import torch
from torch import nn

from gptbert.io.layout import BEST_DIR, WEIGHTS_FILE
from gptbert.training import Callback, evaluate_loss, fit, load_model_weights
from tests.training._train_helpers import TinyCharLM, collate, make_model, targs, train_losses


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
        for path in (out / BEST_DIR / WEIGHTS_FILE, out / WEIGHTS_FILE):
            fresh = make_model(vocab_size, 1, 0.1)
            load_model_weights(fresh, path)
            for k, v in fresh.state_dict().items():
                assert torch.equal(v, snapshots[4][k]), (path, k)
        again = fit(make_model(vocab_size, 0, 0.1), dataclasses.replace(res_args, resume=True), train_set, collate,
                    eval_fn=eval_fn)
        assert (again.stop_reason, again.steps, again.best_step) == ("early_stopping", 8, 4)  # nothing more to do


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
