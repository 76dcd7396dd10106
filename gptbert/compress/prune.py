"""Pruning: unstructured magnitude pruning of Linear weights and structured attention-head pruning.

Magnitude pruning zeroes the smallest weights (by absolute value), either over all prunable
matrices together (``scope="global"``) or the same fraction in each (``scope="layer"``). The
masks (True = kept) are returned; the zeros themselves are the mask once the model is saved, so
:func:`masks_from_zeros` recovers them after a reload. :class:`KeepPrunedZero` is a
:func:`gptbert.training.fit` callback that keeps pruned weights at zero through fine-tuning.

Head pruning removes whole attention heads: the rows of the fused ``qkv`` projection and the
columns of the output ``proj`` that belong to a removed head are cut out, the two Linear layers
are replaced by smaller ones, and ``attn.n_head`` is lowered, so the parameters and the work
really shrink. Which heads go is decided by an importance score per head:

* with data (``batches`` and a ``loss_fn``): the gradient-based importance of Michel et al.
  (2019, "Are Sixteen Heads Really Better than One?"): for a gate g_h = 1 multiplying head h's
  output, ``I_h = sum over examples of |dL/dg_h|``. Because g_h scales the head's context vector
  c_h (the input of ``proj`` for that head), ``dL/dg_h = <c_h, dL/dc_h>`` summed over the
  example's positions; it is read from a hook on ``proj``'s input, with no change to the model.
  Scores are normalised per layer (L2), as in the paper, before the global ranking.
* without data: a weight-norm proxy, ``||W_v,h||_F * ||W_o,h||_F`` (the value rows and output
  columns of head h: how much the head can write into the residual stream).

The N lowest-ranked heads are removed over the whole model, never the last head of a layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn as nn
from torch import Tensor

from gptbert.training import Callback, TrainState

__all__ = [
    "KeepPrunedZero",
    "apply_masks",
    "head_importance",
    "heads_per_layer",
    "magnitude_masks",
    "masks_from_zeros",
    "prunable_weights",
    "prune_heads",
    "prune_magnitude",
    "prune_magnitude_iterative",
    "resize_heads",
    "sparsity",
]

Masks = dict[str, Tensor]
"""``{parameter name: bool tensor of its shape}``, True = kept."""


# ---------------------------------------------------------------------------------------------
# Unstructured magnitude pruning
# ---------------------------------------------------------------------------------------------


def prunable_weights(model: nn.Module, *, include_tied: bool = False) -> dict[str, nn.Parameter]:
    """``{parameter name: weight}`` of every ``nn.Linear`` whose weight is not tied to an embedding.

    Embeddings, LayerNorms and biases are never included.
    """
    tied = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)} if not include_tied else set()
    out: dict[str, nn.Parameter] = {}
    seen: set[int] = set()
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) and id(m.weight) not in tied and id(m.weight) not in seen:
            seen.add(id(m.weight))
            out[f"{name}.weight" if name else "weight"] = m.weight
    return out


def _prune_smallest(values: Tensor, k: int) -> Tensor:
    """Bool mask (True = kept) over a 1-D tensor of magnitudes that drops exactly its ``k`` smallest."""
    n = values.numel()
    keep = torch.ones(n, dtype=torch.bool, device=values.device)
    if k <= 0:
        return keep
    if k >= n:
        return ~keep
    threshold = torch.kthvalue(values.float().cpu(), k).values.to(values.device)
    below = values < threshold
    keep &= ~below
    # Ties at the threshold: drop the first ones (in flat order) until exactly k are dropped.
    needed = k - int(below.sum())
    if needed > 0:
        at = torch.nonzero(values == threshold).flatten()[:needed]
        keep[at] = False
    return keep


def magnitude_masks(
    weights: Mapping[str, Tensor], amount: float, *, scope: Literal["global", "layer"] = "global"
) -> Masks:
    """Masks dropping the fraction ``amount`` of the smallest-magnitude entries.

    ``scope="global"``: one ranking over all ``weights`` together; ``"layer"``: ``amount`` of each.
    The number dropped is ``round(amount * numel)`` exactly (ties broken by position).
    """
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {amount}")
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    if not weights:
        raise ValueError("no weights to prune")
    masks: Masks = {}
    with torch.no_grad():
        if scope == "layer":
            for name, w in weights.items():
                k = round(amount * w.numel())
                masks[name] = _prune_smallest(w.detach().abs().flatten(), k).view_as(w)
            return masks
        flat = torch.cat([w.detach().abs().flatten().float() for w in weights.values()])  # (total,)
        keep = _prune_smallest(flat, round(amount * flat.numel()))
        start = 0
        for name, w in weights.items():
            masks[name] = keep[start : start + w.numel()].view_as(w)
            start += w.numel()
    return masks


def apply_masks(model: nn.Module, masks: Mapping[str, Tensor]) -> None:
    """Zero the pruned entries (mask False) of the named parameters, in place."""
    params = dict(model.named_parameters(remove_duplicate=False))
    with torch.no_grad():
        for name, mask in masks.items():
            if name not in params:
                raise KeyError(f"mask for unknown parameter {name!r}")
            p = params[name]
            p.mul_(mask.to(device=p.device, dtype=p.dtype))


def prune_magnitude(
    model: nn.Module,
    sparsity: float = 0.5,
    *,
    scope: Literal["global", "layer"] = "global",
    names: Iterable[str] | None = None,
    include_tied: bool = False,
) -> Masks:
    """Zero the fraction ``sparsity`` of the smallest Linear weights, in place; returns the masks.

    ``names``: the parameters to prune (default :func:`prunable_weights`). Weights already zero
    count as the smallest, so pruning again to a higher sparsity extends the earlier masks.
    """
    candidates = prunable_weights(model, include_tied=include_tied)
    if names is not None:
        params = dict(model.named_parameters(remove_duplicate=False))
        missing = [n for n in names if n not in params]
        if missing:
            raise KeyError(f"unknown parameter(s) {missing}")
        candidates = {n: params[n] for n in names}
    masks = magnitude_masks(candidates, sparsity, scope=scope)
    apply_masks(model, masks)
    return masks


def prune_magnitude_iterative(
    model: nn.Module,
    schedule: Sequence[float],
    finetune_fn: Callable[[nn.Module, Masks], Any] | None = None,
    *,
    scope: Literal["global", "layer"] = "global",
    include_tied: bool = False,
) -> Masks:
    """Gradual pruning: for each sparsity of the increasing ``schedule``, prune to it, then call
    ``finetune_fn(model, masks)`` (e.g. :func:`gptbert.training.fit` with ``KeepPrunedZero(masks)``).

    Returns the final masks.
    """
    if not schedule:
        raise ValueError("empty sparsity schedule")
    if any(b < a for a, b in zip(schedule, schedule[1:])):
        raise ValueError(f"the sparsity schedule must not decrease, got {list(schedule)}")
    masks: Masks = {}
    for amount in schedule:
        masks = prune_magnitude(model, amount, scope=scope, include_tied=include_tied)
        if finetune_fn is not None:
            finetune_fn(model, masks)
            apply_masks(model, masks)  # whatever the fine-tuning did, pruned weights stay zero
    return masks


def masks_from_zeros(model: nn.Module, names: Iterable[str] | None = None) -> Masks:
    """Masks (True = non-zero) of the prunable weights, e.g. after reloading a pruned checkpoint."""
    params = dict(model.named_parameters(remove_duplicate=False))
    selected = list(names) if names is not None else list(prunable_weights(model))
    return {n: params[n].detach() != 0 for n in selected}


def sparsity(model: nn.Module, names: Iterable[str] | None = None) -> float:
    """Fraction of exactly-zero entries over the given (default: prunable) weights."""
    params = dict(model.named_parameters(remove_duplicate=False))
    selected = list(names) if names is not None else list(prunable_weights(model))
    zeros = sum(int((params[n] == 0).sum()) for n in selected)
    total = sum(params[n].numel() for n in selected)
    return zeros / total if total else 0.0


class KeepPrunedZero(Callback):
    """``fit`` callback: pruned weights stay exactly zero through training.

    Before each optimizer step the gradients of pruned entries are zeroed (so Adam's moments
    stay zero there) and after it the masks are applied again (weight decay or any other change
    cannot revive them). ``masks`` default: :func:`masks_from_zeros` of the model when training
    starts.
    """

    def __init__(self, masks: Mapping[str, Tensor] | None = None) -> None:
        self.masks: dict[str, Tensor] | None = dict(masks) if masks is not None else None
        self._params: list[tuple[nn.Parameter, Tensor]] = []

    def on_train_begin(self, state: TrainState) -> None:
        model = state.raw_model
        if self.masks is None:
            self.masks = masks_from_zeros(model)
        params = dict(model.named_parameters(remove_duplicate=False))
        self._params = []
        for name, mask in self.masks.items():
            if name not in params:
                raise KeyError(f"KeepPrunedZero: the model has no parameter {name!r}")
            p = params[name]
            if tuple(mask.shape) != tuple(p.shape):
                raise ValueError(f"KeepPrunedZero: mask {name!r} {tuple(mask.shape)} does not fit {tuple(p.shape)}")
            self._params.append((p, mask.to(device=p.device, dtype=torch.bool)))
        self._apply()

    @torch.no_grad()
    def _apply(self) -> None:
        for p, mask in self._params:
            p.masked_fill_(~mask, 0.0)

    @torch.no_grad()
    def on_before_optimizer_step(self, state: TrainState) -> None:
        for p, mask in self._params:
            if p.grad is not None:
                p.grad.masked_fill_(~mask, 0.0)

    def on_step_end(self, state: TrainState, loss: Tensor) -> None:
        self._apply()


# ---------------------------------------------------------------------------------------------
# Structured attention-head pruning
# ---------------------------------------------------------------------------------------------


def _blocks(model: nn.Module) -> nn.ModuleList:
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or not all(hasattr(b, "attn") for b in blocks):
        raise TypeError(f"{type(model).__name__} has no transformer blocks with attention (head pruning needs BERT or GPT)")
    return blocks


def heads_per_layer(model: nn.Module) -> list[int]:
    """Number of attention heads of each layer."""
    return [int(b.attn.n_head) for b in _blocks(model)]


def _head_rows(attn: nn.Module, heads: Sequence[int]) -> Tensor:
    """Row indices of ``qkv`` (q rows, then k rows, then v rows) belonging to ``heads``."""
    hs, inner = attn.head_size, attn.n_head * attn.head_size
    cols = torch.cat([torch.arange(h * hs, (h + 1) * hs) for h in heads])  # (len(heads) * hs,)
    return torch.cat([cols, cols + inner, cols + 2 * inner])


@torch.no_grad()
def _shrink_attention(attn: nn.Module, keep: Sequence[int]) -> None:
    """Keep only heads ``keep`` of ``attn``: new, smaller ``qkv`` and ``proj`` with copied weights."""
    keep = sorted(keep)
    if not keep:
        raise ValueError("cannot remove every head of a layer")
    hs = attn.head_size
    rows = _head_rows(attn, keep)
    cols = torch.cat([torch.arange(h * hs, (h + 1) * hs) for h in keep])
    old_qkv, old_proj = attn.qkv, attn.proj
    inner = len(keep) * hs
    qkv = nn.Linear(old_qkv.in_features, 3 * inner, bias=old_qkv.bias is not None,
                    device=old_qkv.weight.device, dtype=old_qkv.weight.dtype)
    proj = nn.Linear(inner, old_proj.out_features, bias=old_proj.bias is not None,
                     device=old_proj.weight.device, dtype=old_proj.weight.dtype)
    qkv.weight.copy_(old_qkv.weight[rows.to(old_qkv.weight.device)])
    if old_qkv.bias is not None:
        qkv.bias.copy_(old_qkv.bias[rows.to(old_qkv.bias.device)])
    proj.weight.copy_(old_proj.weight[:, cols.to(old_proj.weight.device)])
    if old_proj.bias is not None:
        proj.bias.copy_(old_proj.bias)
    qkv.train(old_qkv.training)
    proj.train(old_proj.training)
    attn.qkv, attn.proj, attn.n_head = qkv, proj, len(keep)


def resize_heads(model: nn.Module, n_heads: Sequence[int]) -> nn.Module:
    """Give layer i ``n_heads[i]`` heads (its first ones): the shape a head-pruned checkpoint needs
    before its weights are loaded. In place; returns the model."""
    blocks = _blocks(model)
    if len(n_heads) != len(blocks):
        raise ValueError(f"{len(n_heads)} head counts for {len(blocks)} layers")
    for i, (block, n) in enumerate(zip(blocks, n_heads)):
        if not 1 <= n <= block.attn.n_head:
            raise ValueError(f"layer {i}: cannot have {n} heads (it has {block.attn.n_head})")
        if n != block.attn.n_head:
            _shrink_attention(block.attn, list(range(n)))
    return model


def _weight_norm_importance(model: nn.Module) -> list[Tensor]:
    scores = []
    for block in _blocks(model):
        attn = block.attn
        nh, hs = attn.n_head, attn.head_size
        inner = nh * hs
        w_v = attn.qkv.weight.detach().float()[2 * inner : 3 * inner].view(nh, hs, -1)  # (nh, hs, C)
        w_o = attn.proj.weight.detach().float().view(-1, nh, hs)  # (C, nh, hs)
        scores.append(w_v.flatten(1).norm(dim=1) * w_o.transpose(0, 1).flatten(1).norm(dim=1))  # (nh,)
    return scores


def head_importance(
    model: nn.Module,
    batches: Iterable[Mapping[str, Any]] | None = None,
    loss_fn: Callable[[nn.Module, Mapping[str, Any]], Tensor] | None = None,
    *,
    normalize: bool = True,
) -> list[Tensor]:
    """Importance of every head, one (n_head,) tensor per layer (higher = more important).

    With ``batches``: Michel et al.'s ``sum over examples |dL/dg_h|`` where
    ``L = loss_fn(model, batch)`` (default: the loss of ``model(**batch)``), computed in eval
    mode; the model's weights and gradients are left untouched. Without: the weight-norm proxy.
    ``normalize``: divide each layer's scores by their L2 norm.
    """
    blocks = _blocks(model)
    if batches is None:
        scores = _weight_norm_importance(model)
    else:
        if loss_fn is None:
            def loss_fn(m: nn.Module, b: Mapping[str, Any]) -> Tensor:
                out = m(**b)
                loss = out[1] if isinstance(out, tuple) else out
                if loss is None:
                    raise ValueError("head_importance: the batch gives no loss (no targets?); pass loss_fn")
                return loss

        scores = [torch.zeros(b.attn.n_head, dtype=torch.float64) for b in blocks]
        contexts: list[Tensor | None] = [None] * len(blocks)

        def make_hook(i: int) -> Callable:
            def hook(module: nn.Module, args: tuple[Tensor, ...]) -> None:
                ctx = args[0]  # (B, T, nh*hs): the heads' context vectors
                if ctx.requires_grad:
                    ctx.retain_grad()
                contexts[i] = ctx
            return hook

        was_training = model.training
        grad_state = {n: p.requires_grad for n, p in model.named_parameters()}
        handles = [b.attn.proj.register_forward_pre_hook(make_hook(i)) for i, b in enumerate(blocks)]
        # Gradients flow to the context vectors only: freeze the weights, start from embeddings.
        for p in model.parameters():
            p.requires_grad_(False)
        emb_handle = _embedding_requires_grad(model)
        model.eval()
        try:
            n_batches = 0
            for batch in batches:
                contexts[:] = [None] * len(blocks)
                with torch.enable_grad():
                    loss = loss_fn(model, batch)
                    if isinstance(loss, tuple):
                        loss = loss[1]
                    loss.backward()
                for i, ctx in enumerate(contexts):
                    if ctx is None or ctx.grad is None:
                        raise RuntimeError(f"head_importance: no gradient reached layer {i}")
                    B, T, _ = ctx.shape
                    nh = blocks[i].attn.n_head
                    g = (ctx.detach() * ctx.grad).view(B, T, nh, -1).sum(dim=(1, 3))  # (B, nh): dL/dg_h per example
                    scores[i] += g.abs().sum(dim=0).double().cpu()
                n_batches += 1
            if n_batches == 0:
                raise ValueError("head_importance: no batches")
        finally:
            for h in handles:
                h.remove()
            emb_handle.remove()
            for n, p in model.named_parameters():
                p.requires_grad_(grad_state[n])
            model.train(was_training)
        scores = [s.float() for s in scores]
    if normalize:
        scores = [s / s.norm().clamp(min=1e-12) for s in scores]
    return scores


class _Handle:
    def __init__(self, handles: list[Any]) -> None:
        self.handles = handles

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _embedding_requires_grad(model: nn.Module) -> _Handle:
    """Make embedding outputs require grad (weights frozen) so the backward pass reaches the heads."""
    handles = []
    for m in model.modules():
        if isinstance(m, nn.Embedding):
            handles.append(m.register_forward_hook(lambda mod, inp, out: out.requires_grad_(True)))
    return _Handle(handles)


def prune_heads(
    model: nn.Module,
    n_remove: int,
    *,
    batches: Iterable[Mapping[str, Any]] | None = None,
    loss_fn: Callable[[nn.Module, Mapping[str, Any]], Tensor] | None = None,
    importance: Sequence[Tensor] | None = None,
) -> dict[str, Any]:
    """Remove the ``n_remove`` least important heads of the whole model, in place.

    ``importance``: precomputed scores (one (n_head,) tensor per layer); otherwise computed by
    :func:`head_importance` from ``batches``/``loss_fn`` or the weight-norm proxy. At least one
    head is kept per layer. Returns ``{"heads_per_layer": [...], "removed": [[head, ...] per
    layer], "importance": "gradient" | "weight-norm" | "given"}`` (head indices as they were
    before this call).
    """
    blocks = _blocks(model)
    total = sum(b.attn.n_head for b in blocks)
    if not 0 <= n_remove <= total - len(blocks):
        raise ValueError(
            f"can remove between 0 and {total - len(blocks)} heads ({total} heads in {len(blocks)} layers, "
            f"one kept per layer); got {n_remove}"
        )
    source = "given" if importance is not None else ("gradient" if batches is not None else "weight-norm")
    scores = list(importance) if importance is not None else head_importance(model, batches, loss_fn)
    if len(scores) != len(blocks) or any(s.numel() != b.attn.n_head for s, b in zip(scores, blocks)):
        raise ValueError("importance: expected one score per head of every layer")
    ranked = sorted(
        ((float(s[h]), i, h) for i, s in enumerate(scores) for h in range(s.numel())),
        key=lambda t: (t[0] if math.isfinite(t[0]) else math.inf, t[1], t[2]),
    )
    remaining = [b.attn.n_head for b in blocks]
    removed: list[list[int]] = [[] for _ in blocks]
    for _, i, h in ranked:
        if sum(len(r) for r in removed) == n_remove:
            break
        if remaining[i] > 1:
            removed[i].append(h)
            remaining[i] -= 1
    for i, block in enumerate(blocks):
        if removed[i]:
            _shrink_attention(block.attn, [h for h in range(block.attn.n_head) if h not in removed[i]])
    return {"heads_per_layer": heads_per_layer(model), "removed": [sorted(r) for r in removed], "importance": source}
