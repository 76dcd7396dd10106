"""Tests of gptbert.training.schedule: the learning-rate schedules and the optimizer's parameter groups."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gptbert.training import lr_at, param_groups


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


def test_head_lr_and_layer_decay_scale_the_groups():
    from gptbert.config import ModelConfig
    from gptbert.models import build_model
    from gptbert.training import TrainArgs, build_optimizer
    from gptbert.training.schedule import lr_scale_of

    model = build_model(ModelConfig.from_name("bert-tiny", head="classify", num_labels=3, vocab_size=100))
    n = model.config.n_layer
    assert lr_scale_of("task.out.out.weight", n_layer=n, head_scale=10.0, layer_decay=0.5) == 10.0
    assert lr_scale_of(f"blocks.{n - 1}.mlp.fc.weight", n_layer=n, layer_decay=0.5) == 0.5
    assert lr_scale_of("blocks.0.ln_1.weight", n_layer=n, layer_decay=0.5) == 0.5 ** n
    assert lr_scale_of("embeddings.wte.weight", n_layer=n, layer_decay=0.5) == 0.5 ** (n + 1)
    assert lr_scale_of("pooler.dense.weight", n_layer=n, layer_decay=0.5) == 1.0
    assert lr_scale_of("blocks.1.x", n_layer=n) == 1.0  # no layer decay: one lr
    opt = build_optimizer(model, TrainArgs(lr=1e-4, head_lr=1e-3, max_steps=1))
    scales = {id(p): g["lr_scale"] for g in opt.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert scales[id(named["task.out.out.weight"])] == pytest.approx(10.0)
    assert scales[id(named["blocks.0.attn.qkv.weight"])] == 1.0
    # every parameter once; decay / no-decay kept apart within each scale
    assert sum(len(g["params"]) for g in opt.param_groups) == len(named)
    assert {g["weight_decay"] for g in opt.param_groups if g["lr_scale"] == 10.0} == {0.0, 0.01}
    # without the options the groups are today's two, unscaled
    plain = build_optimizer(model, TrainArgs(lr=1e-4, max_steps=1))
    assert len(plain.param_groups) == 2 and "lr_scale" not in plain.param_groups[0]


def test_fit_applies_the_group_scales():
    from gptbert.config import ModelConfig
    from gptbert.models import build_model
    from gptbert.training import Callback, fit
    from tests.training._train_helpers import collate, targs

    seen: list[dict[str, float]] = []

    class Spy(Callback):
        def on_step_end(self, state, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
            seen.append({round(g.get("lr_scale", 1.0), 3): g["lr"] for g in state.optimizer.param_groups})

    torch.manual_seed(0)
    model = build_model(ModelConfig.from_name("bert-tiny", head="classify", num_labels=3, vocab_size=100))
    data = [{"idx": torch.randint(5, 100, (8,)), "targets": torch.tensor(i % 3)} for i in range(16)]
    fit(model, targs(max_steps=2, lr=1e-3, head_lr=5e-3, layer_decay=0.5, schedule="constant"), data, collate,
        callbacks=[Spy()])
    for lrs in seen:
        for scale, lr in lrs.items():
            assert lr == pytest.approx(1e-3 * scale)
    assert set(seen[-1]) >= {5.0, 1.0, 0.5, 0.25, 0.125}  # head, top, blocks 1 and 0, embeddings


def test_the_schedule_ends_with_the_time_budget(monkeypatch, train_set, vocab_size):
    """Under a time budget the decay is planned from the measured progress: however long a step
    takes, the lr reaches its floor when the budget runs out, and training stops there."""
    import types

    from gptbert.training import Callback, fit, loop
    from tests.training._train_helpers import collate, make_model, targs

    clock = {"t": 1000.0}
    monkeypatch.setattr(loop, "time", types.SimpleNamespace(monotonic=lambda: clock["t"], time=lambda: clock["t"],
                                                             perf_counter=lambda: clock["t"]))
    lrs: list[float] = []

    class Tick(Callback):
        def on_step_end(self, state, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
            lrs.append(state.optimizer.param_groups[0]["lr"])
            clock["t"] += 0.7 if len(lrs) < 10 else 1.3  # steps get slower half-way: the plan follows

    res = fit(make_model(vocab_size, 0, 0.0), targs(time_budget="30s", lr=1e-3, warmup_ratio=0.1, schedule="linear"),
              train_set, collate, callbacks=[Tick()])
    assert res.stop_reason == "time_budget"
    assert max(lrs) == pytest.approx(1e-3, rel=0.15)  # the warm-up reached the peak
    assert lrs[-1] < 0.1 * max(lrs)  # and the decay its end, inside the budget
    assert lrs.index(max(lrs)) < len(lrs) // 3
