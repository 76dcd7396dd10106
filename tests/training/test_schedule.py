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
