"""The training step's fast paths give the same training: fused / foreach AdamW = the single-tensor
loop, a compiled model = the eager one; and ``--compile auto`` decides as documented."""

from __future__ import annotations

import pytest
import torch

from gptbert.training import fit
from tests.training._train_helpers import collate, make_model, targs, train_losses


@pytest.mark.parametrize("impl", ["fused", "foreach"])
def test_adamw_kernels_match_the_loop(impl: str, train_set, vocab_size) -> None:
    runs = {}
    for name in ("single", impl):
        model = make_model(vocab_size, 0, dropout=0.0)
        res = fit(model, targs(max_steps=5, optimizer_impl=name, compile="off", weight_decay=0.1), train_set, collate)
        runs[name] = (model, train_losses(res.history))
    (m1, l1), (m2, l2) = runs["single"], runs[impl]
    assert [round(b, 5) for _, b, _ in l1] == pytest.approx([round(b, 5) for _, b, _ in l2], rel=1e-4)
    for (name, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
        torch.testing.assert_close(p1, p2, rtol=1e-4, atol=1e-6, msg=name)
    assert not torch.equal(next(m1.parameters()), next(make_model(vocab_size, 0, dropout=0.0).parameters()))


def test_auto_is_fused(vocab_size) -> None:
    from gptbert.training import TrainArgs, build_optimizer

    opt = build_optimizer(make_model(vocab_size, 0, 0.0), TrainArgs(max_steps=1))
    assert opt.defaults["fused"] is True
    assert TrainArgs(max_steps=1, compile=True).compile == "on" and TrainArgs(compile=False).compile == "off"
    with pytest.raises(ValueError, match="compile"):
        TrainArgs(compile="sometimes")  # type: ignore[arg-type]


def test_compile_auto_rule() -> None:
    from gptbert.training.speed import CompileCost, compile_decision

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert compile_decision("on", cpu, planned_s=1.0).compile
    assert not compile_decision("off", cuda, planned_s=1e6).compile
    assert not compile_decision("auto", cuda, planned_s=1e6).compile  # nothing measured there
    costs = {"cuda": CompileCost(speedup=1.25, compile_s=100.0, measured="test")}
    # saves planned * 0.2: pays back 2 x 100 s from 1000 s on
    assert not compile_decision("auto", cuda, planned_s=900.0, costs=costs).compile
    long = compile_decision("auto", cuda, planned_s=1100.0, costs=costs)
    assert long.compile and "pays back" in long.reason
    assert not compile_decision("auto", cuda, planned_s=None, costs=costs).compile  # unknown length: eager
    slower = {"cpu": CompileCost(speedup=0.95, compile_s=100.0, measured="test")}
    assert not compile_decision("auto", cpu, planned_s=1e6, costs=slower).compile


@pytest.mark.slow
def test_compiled_equals_eager(train_set, vocab_size) -> None:
    """Three steps without dropout: the same losses and weights within float tolerance."""
    runs = {}
    for mode in ("off", "on"):
        model = make_model(vocab_size, 0, dropout=0.0)
        res = fit(model, targs(max_steps=3, compile=mode), train_set, collate)
        runs[mode] = (model, [loss for _, loss, _ in train_losses(res.history)])
    (m1, l1), (m2, l2) = runs["off"], runs["on"]
    assert l1 == pytest.approx(l2, rel=1e-4, abs=1e-5)
    # Adam moves a weight by ~lr whatever the size of its gradient, so embedding rows with
    # near-zero gradients can differ by up to lr per step: checked within that bound.
    for (name, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
        atol = 3 * 3e-3 if name.startswith("wte") else 1e-4
        torch.testing.assert_close(p1, p2, rtol=1e-3, atol=atol, msg=name)


def test_fit_decides_compile_after_eager_steps(train_set, vocab_size, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from gptbert.training.speed import EAGER_STEPS

    model = make_model(vocab_size, 0, dropout=0.0)
    with caplog.at_level(logging.INFO, logger="gptbert.training.loop"):
        res = fit(model, targs(max_steps=EAGER_STEPS + 2), train_set, collate)
    assert res.steps == EAGER_STEPS + 2
    decided = [r.getMessage() for r in caplog.records if "--compile auto" in r.getMessage()]
    assert len(decided) == 1 and f"at step {EAGER_STEPS}:" in decided[0] and "eager" in decided[0]
