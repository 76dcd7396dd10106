"""Magnitude pruning (exact sparsity, zeros kept through fit) and structured head pruning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn

from gptbert.compress import (
    KeepPrunedZero,
    compress,
    head_importance,
    heads_per_layer,
    load_compressed,
    masks_from_zeros,
    prune_heads,
    prune_magnitude,
    save_compressed,
    sparsity,
)
from gptbert.compress.prune import prunable_weights
from gptbert.models import count_parameters
from gptbert.models.transformer import KVCache
from gptbert.training import TrainArgs, fit

from tests.compress._models import VOCAB, batch, tiny



def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


class _Examples:
    """Random classification examples for a few training steps."""

    def __init__(self, n: int = 16, t: int = 8) -> None:
        g = torch.Generator().manual_seed(1)
        self.idx = torch.randint(1, VOCAB, (n, t), generator=g)
        self.y = torch.randint(0, 3, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"idx": self.idx[i], "targets": self.y[i]}


def _collate(examples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([e[k] for e in examples]) for k in examples[0]}


def _args(steps: int = 3) -> TrainArgs:
    return TrainArgs(max_steps=steps, batch_size=8, lr=1e-2, weight_decay=0.1, progress=False,
                     tensorboard=False, device="cpu", log_every=100, keep_best=False)


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_global_magnitude_pruning_is_exact(family: str) -> None:
    model = tiny(family, head="classify")
    before = _state(model)
    masks = prune_magnitude(model, 0.5)
    names = list(prunable_weights(model))
    assert set(masks) == set(names)
    assert all(".attn." in n or ".mlp." in n or "pooler" in n or "task" in n for n in names)
    total = sum(before[n].numel() for n in names)
    zeros = sum(int((model.state_dict()[n] == 0).sum()) for n in names)
    assert zeros == round(0.5 * total)
    assert sparsity(model) == pytest.approx(round(0.5 * total) / total)
    # The pruned entries are the smallest ones, the kept ones are unchanged.
    pruned = torch.cat([before[n][~masks[n]].abs() for n in names])
    kept = torch.cat([before[n][masks[n]].abs() for n in names])
    assert float(pruned.max()) <= float(kept.min())
    after = model.state_dict()
    for n in names:
        assert torch.equal(after[n][masks[n]], before[n][masks[n]])
    # Embeddings, LayerNorms and biases are untouched.
    for k, v in before.items():
        if k not in masks:
            assert torch.equal(after[k], v), k


def test_per_layer_scope_prunes_each_matrix_equally() -> None:
    model = tiny("bert")
    masks = prune_magnitude(model, 0.3, scope="layer")
    for name, mask in masks.items():
        assert int((~mask).sum()) == round(0.3 * mask.numel()), name


def test_pruned_weights_stay_zero_through_fit() -> None:
    model = tiny("bert").train()
    masks = prune_magnitude(model, 0.5)
    before = _state(model)
    fit(model, _args(), _Examples(), _collate, callbacks=[KeepPrunedZero(masks)])
    after = model.state_dict()
    for name, mask in masks.items():
        assert bool((after[name][~mask] == 0).all()), name
    changed = [n for n, m in masks.items() if not torch.equal(after[n][m], before[n][m])]
    assert changed, "training did not change the kept weights"
    # Without the callback the pruned weights come back to life: the callback does the work.
    control = tiny("bert").train()
    prune_magnitude(control, 0.5)
    fit(control, _args(), _Examples(), _collate)
    assert sparsity(control) < 0.5


def test_iterative_schedule_and_masks_from_zeros_after_reload(tmp_path: Path) -> None:
    model = tiny("bert").train()
    calls: list[float] = []

    def finetune(m: nn.Module, masks: dict[str, torch.Tensor]) -> None:
        calls.append(sparsity(m))
        fit(m, _args(2), _Examples(), _collate, callbacks=[KeepPrunedZero(masks)])

    model, info = compress(model, "prune-magnitude", schedule=[0.25, 0.5], finetune_fn=finetune)
    total = sum(p.numel() for p in prunable_weights(model).values())
    assert calls == [pytest.approx(round(0.25 * total) / total), pytest.approx(round(0.5 * total) / total)]
    assert info["sparsity"] == pytest.approx(round(0.5 * total) / total)
    model.eval()
    b = batch()
    with torch.no_grad():
        out = model(**b)[0]
    save_compressed(model, tmp_path / "p", info)
    again = load_compressed(tmp_path / "p")
    with torch.no_grad():
        assert torch.equal(again(**b)[0], out)
    recovered = masks_from_zeros(again)
    assert sparsity(again) == info["sparsity"]
    # KeepPrunedZero() with no masks takes them from the zeros.
    again.train()
    fit(again, _args(2), _Examples(), _collate, callbacks=[KeepPrunedZero()])
    assert all(bool((again.state_dict()[n][~m] == 0).all()) for n, m in recovered.items())


def _removed_per_head(config) -> int:  # noqa: ANN001
    hs, C = config.head_size, config.n_embd
    return 4 * hs * C + 3 * hs  # qkv rows (3 hs x C + 3 hs bias) and proj columns (C x hs)


@pytest.mark.parametrize("family,head", [("bert", "classify"), ("gpt", "lm")])
def test_head_pruning_removes_exact_parameters(tmp_path: Path, family: str, head: str) -> None:
    model = tiny(family, head=head)
    n_before = count_parameters(model)
    model, info = compress(model, "prune-heads", heads=5)
    assert sum(info["heads_per_layer"]) == 8 - 5 and min(info["heads_per_layer"]) >= 1
    assert info["importance"] == "weight-norm"
    assert n_before - count_parameters(model) == 5 * _removed_per_head(model.config)
    assert info["params_before"] - info["params_after"] == 5 * _removed_per_head(model.config)
    for blk in model.blocks:
        nh = blk.attn.n_head
        assert blk.attn.qkv.weight.shape == (3 * nh * model.config.head_size, model.config.n_embd)
        assert blk.attn.proj.weight.shape == (model.config.n_embd, nh * model.config.head_size)
    b = batch(pad=False)
    with torch.no_grad():
        out = model(**b)[0]
    if family == "bert":
        assert out.shape == (3, 3)
    else:  # KV-cache decoding still equals the full pass
        idx = b["idx"]
        with torch.no_grad():
            cache = KVCache.for_model(model, 3, idx.size(1))
            steps = [model(idx[:, :5], cache=cache)[0]] + [model(idx[:, t : t + 1], cache=cache)[0]
                                                          for t in range(5, idx.size(1))]
        torch.testing.assert_close(torch.cat(steps, dim=1), model(idx)[0], atol=1e-5, rtol=1e-4)
    save_compressed(model, tmp_path / "h", info)
    again = load_compressed(tmp_path / "h")
    assert heads_per_layer(again) == info["heads_per_layer"]
    assert count_parameters(again) == count_parameters(model)
    with torch.no_grad():
        assert torch.equal(again(**b)[0], out)


def test_gradient_importance_finds_a_dead_head() -> None:
    model = tiny("bert")
    with torch.no_grad():  # head 2 of layer 0 writes nothing: its output columns are zero
        hs = model.config.head_size
        model.blocks[0].attn.proj.weight[:, 2 * hs : 3 * hs] = 0.0
    g = torch.Generator().manual_seed(3)
    batches = [{**batch(seed=s), "targets": torch.randint(0, 3, (3,), generator=g)} for s in range(2)]
    before = _state(model)
    scores = head_importance(model, batches)
    assert [s.shape for s in scores] == [(4,), (4,)]
    assert float(scores[0][2]) == 0.0 and all(float(s.min()) >= 0 for s in scores)
    assert all(float(s[[0, 1, 3]].min()) > 0 for s in scores[:1])
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with torch.no_grad():
        ref = model(**batches[0])[0]
    report = prune_heads(model, 1, batches=batches)
    assert report["removed"] == [[2], []] and report["importance"] == "gradient"
    with torch.no_grad():  # removing a head that wrote nothing changes nothing
        torch.testing.assert_close(model(**batches[0])[0], ref, atol=1e-6, rtol=1e-5)


def test_head_pruning_keeps_one_head_per_layer() -> None:
    model = tiny("gpt", head="lm")
    with pytest.raises(ValueError, match="one kept per layer"):
        prune_heads(model, 7)
    prune_heads(model, 6)
    assert heads_per_layer(model) == [1, 1]
    with torch.no_grad():
        logits = model(batch(pad=False)["idx"])[0]
    assert torch.isfinite(logits).all()
