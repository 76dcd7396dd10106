"""Learning rate and optimizer: the schedule as pure functions, AdamW over decay / no-decay groups.

Linear warmup, then constant / linear / cosine / exponential (:func:`lr_at`). The decay runs over
the limit expected to come first (:func:`schedule_total`): ``max_steps``, ``max_epochs x steps
per epoch``, or, with a ``time_budget``, ``steps_done x budget / elapsed`` re-estimated every step
(progress = fraction of the budget spent), so the LR reaches ``min_lr`` when the budget runs out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from gptbert.training.args import TrainArgs

__all__ = ["HEAD_PREFIX", "build_optimizer", "lr_at", "lr_for_step", "lr_scale_of", "param_groups", "schedule_total"]

HEAD_PREFIX = "task."
"""Parameters of a model's task head (every family's TaskHead lives at ``model.task``)."""


def lr_at(
    step: int,
    *,
    schedule: str,
    base_lr: float,
    min_lr: float = 0.0,
    warmup_steps: float = 0,
    total_steps: float | None = None,
    gamma: float = 1.0,
) -> float:
    """Learning rate of optimizer update number ``step`` (0 = the first update).

    Warmup (all schedules): ``base_lr * (step + 1) / warmup_steps`` while ``step < warmup_steps``.
    Then, with ``s = step - warmup_steps`` and ``p = min(1, s / (total_steps - warmup_steps))``:

    * constant: ``base_lr``
    * linear: ``min_lr + (base_lr - min_lr) * (1 - p)``: reaches min_lr at ``step == total_steps``
    * cosine: ``min_lr + (base_lr - min_lr) * (1 + cos(pi p)) / 2``
    * exponential: ``max(min_lr, base_lr * gamma ** s)`` (total_steps unused)

    ``total_steps=None`` (or inf) means "unknown": no decay yet (p = 0).
    """
    if step < 0:
        raise ValueError(f"lr_at: step must be >= 0, got {step}")
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    s = step - warmup_steps
    if schedule == "constant":
        return base_lr
    if schedule == "exponential":
        return max(min_lr, base_lr * gamma**s)
    if schedule not in ("linear", "cosine"):
        raise ValueError(f"unknown schedule {schedule!r}: expected constant, linear, cosine or exponential")
    if total_steps is None or not math.isfinite(total_steps):
        p = 0.0
    else:
        p = min(1.0, s / max(1.0, total_steps - warmup_steps))
    if schedule == "linear":
        return min_lr + (base_lr - min_lr) * (1.0 - p)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))


def schedule_total(args: TrainArgs, step: int, elapsed: float, steps_per_epoch: int) -> float | None:
    """Steps the schedule decays over: the limit expected to come first (None: no step limit at all).

    With a time budget the total is re-estimated every step as ``step * budget / elapsed``
    (i.e. progress = fraction of the budget spent, evaluations included), so the LR reaches
    min_lr when the budget runs out; before the first step it is unknown (inf).
    """
    total: float | None = None
    if args.max_steps is not None:
        total = float(args.max_steps)
    if args.max_epochs is not None:
        e = float(args.max_epochs * steps_per_epoch)
        total = e if total is None else min(total, e)
    budget = args.time_budget_s
    if budget is not None:
        t = step * budget / elapsed if step > 0 and elapsed > 0 else math.inf
        total = t if total is None else min(total, t)
    return total


def lr_for_step(args: TrainArgs, step: int, total: float | None) -> float:
    """:func:`lr_at` with ``args``' schedule; ``warmup_ratio`` turns into steps of ``total``."""
    warmup: float = args.warmup_steps
    if warmup == 0 and args.warmup_ratio > 0 and total is not None:
        warmup = round(args.warmup_ratio * total) if math.isfinite(total) else math.inf
    return lr_at(step, schedule=args.schedule, base_lr=args.lr, min_lr=args.min_lr, warmup_steps=warmup,
                 total_steps=total, gamma=args.decay_gamma)


_NO_DECAY_MODULES: tuple[type[nn.Module], ...] = tuple(
    t
    for t in (
        nn.LayerNorm,
        getattr(nn, "RMSNorm", None),
        nn.GroupNorm,
        nn.modules.batchnorm._BatchNorm,
        nn.modules.instancenorm._InstanceNorm,
        nn.Embedding,
        nn.EmbeddingBag,
    )
    if t is not None
)


def lr_scale_of(name: str, *, n_layer: int, head_scale: float = 1.0, layer_decay: float | None = None) -> float:
    """The factor a parameter's learning rate gets: ``head_scale`` for the head (``task.*``); with
    ``layer_decay``, ``layer_decay ** (n_layer - i)`` for ``blocks.i.*`` and ``** (n_layer + 1)``
    for ``embeddings.*``; 1 for everything else (final norm, pooler)."""
    if name.startswith(HEAD_PREFIX):
        return head_scale
    if layer_decay is None:
        return 1.0
    m = re.match(r"blocks\.(\d+)\.", name)
    if m:
        return layer_decay ** (n_layer - int(m.group(1)))
    if name.startswith("embeddings."):
        return layer_decay ** (n_layer + 1)
    return 1.0


def param_groups(
    model: nn.Module, weight_decay: float, *, no_decay_norm_bias_embed: bool = True,
    lr_scale: Callable[[str], float] | None = None,
) -> list[dict[str, Any]]:
    """AdamW parameter groups: ``[{"params": decayed, "weight_decay": wd}, {"params": rest, 0.0}]``.

    With ``no_decay_norm_bias_embed``, a parameter is exempt from decay when any module owning it
    is a normalisation layer or an embedding (by type, so a tied output projection counts as the
    embedding), or when it has fewer than 2 dimensions (biases, gains, custom norms). Frozen
    parameters are left out; shared parameters appear once. Empty groups are omitted.

    ``lr_scale(name)`` (e.g. :func:`lr_scale_of`) splits the groups further by that factor, kept
    in each group as ``"lr_scale"``: the training loop sets a group's lr to ``lr x lr_scale``.
    """
    exempt: set[int] = set()
    if no_decay_norm_bias_embed:
        for module in model.modules():
            special = isinstance(module, _NO_DECAY_MODULES)
            for p in module.parameters(recurse=False):
                if special or p.ndim < 2:
                    exempt.add(id(p))
    buckets: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():  # deduplicates shared parameters
        if p.requires_grad:
            scale = lr_scale(name) if lr_scale is not None else 1.0
            buckets.setdefault((scale, id(p) in exempt), []).append(p)
    groups = []
    for (scale, exempted), params in sorted(buckets.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
        group: dict[str, Any] = {"params": params, "weight_decay": 0.0 if exempted else weight_decay}
        if lr_scale is not None:
            group["lr_scale"] = scale
        groups.append(group)
    if not groups:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    return groups


def build_optimizer(model: nn.Module, args: TrainArgs) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` with ``args.optimizer_impl``'s kernels (auto: fused)."""
    scale = None
    if args.head_lr is not None or args.layer_decay is not None:
        n_layer = int(getattr(getattr(model, "config", None), "n_layer", 0) or 0)
        head_scale = args.head_lr / args.lr if args.head_lr is not None and args.lr > 0 else 1.0

        def scale(name: str) -> float:
            return lr_scale_of(name, n_layer=n_layer, head_scale=head_scale, layer_decay=args.layer_decay)

    groups = param_groups(model, args.weight_decay, no_decay_norm_bias_embed=args.no_decay_norm_bias_embed,
                          lr_scale=scale)
    impl = "fused" if args.optimizer_impl == "auto" else args.optimizer_impl
    kernels = {"fused": {"fused": True}, "foreach": {"foreach": True}, "single": {"foreach": False}}[impl]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps, **kernels)
