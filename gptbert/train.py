"""The one training loop: pre-training, fine-tuning and distillation all go through :func:`fit`.

Contract
--------
* A batch is a ``dict[str, Tensor]`` built by the caller's ``collate_fn(list_of_examples)``.
* The model is called ``logits, loss = model(**batch)`` (``logits`` may be anything, e.g. a
  tuple); ``loss`` is a scalar mean over the non-ignored targets. A ``loss_fn(model, batch)``
  can replace that call (e.g. distillation: teacher + student).
* ``fit`` owns the sampling: the example order of epoch ``e`` is a permutation drawn from
  ``seed + e``; every process takes its strided slice of it. The data position (epoch, batch
  within the epoch) is part of the checkpoint, so resuming is exact.

Step semantics
--------------
One *step* is one optimizer update. It consumes ``grad_accum`` micro-batches of ``batch_size``
examples on every process (fewer at the end of an epoch: steps never straddle epochs), so the
effective batch is ``batch_size * grad_accum * world_size`` examples. Micro-batch losses are
weighted by their number of examples, which makes ``2 x B/2`` equal ``1 x B``.

Learning rate
-------------
Linear warmup, then constant / linear / cosine / exponential (:func:`lr_at`, a pure function).
The decay runs over the limit expected to come first: ``max_steps``, ``max_epochs x steps per
epoch``, or, with a ``time_budget``, ``steps_done x budget / elapsed`` re-estimated every step
(progress = fraction of the budget spent), so the LR reaches ``min_lr`` when the budget runs out.

Randomness
----------
A fresh run seeds python/numpy/torch from ``seed`` (+ rank); a resumed run restores every
process's generator states from the checkpoint. Reading examples and ``collate_fn`` (e.g. MLM
masking) run under generators seeded from (seed, epoch, rank, batch index): reproducible,
independent of ``num_workers``, and they do not shift the training generators (dropout).

Files under ``out_dir`` (written by rank 0 only)
------------------------------------------------
``checkpoint.safetensors``  everything needed to resume (model, optimizer, RNG states, data
                            position, results so far, args); tensors in safetensors, the rest as
                            JSON in its metadata: no pickle anywhere. Replaced atomically.
``best/model.safetensors``  the weights at the best evaluation (+ ``best/meta.json``).
``model.safetensors``       the final weights (the best ones when ``keep_best``). Beside both, a
                            ``config.json`` when the model has a ``config.to_dict()``, which makes
                            ``out_dir`` and ``best/`` loadable by ``gptbert.checkpoint.load_model``.
``metrics.jsonl``           one JSON object per log step (``"kind": "train"``) and per
                            evaluation (``"kind": "eval"``, metrics prefixed ``eval_``).
``tb/``                     TensorBoard events, when ``torch.utils.tensorboard`` imports.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "BEST_DIR",
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "METRICS_FILE",
    "MODEL_FILE",
    "Callback",
    "FitResult",
    "TrainArgs",
    "TrainState",
    "WorldInfo",
    "build_optimizer",
    "count_tokens",
    "epoch_batches",
    "epoch_indices",
    "evaluate_loss",
    "fit",
    "is_main_process",
    "load_checkpoint",
    "load_model_weights",
    "lr_at",
    "param_groups",
    "parse_duration",
    "resolve_device",
    "save_model_weights",
    "seed_everything",
    "world_info",
]

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.safetensors"
MODEL_FILE = "model.safetensors"
BEST_DIR = "best"
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
_TIED_KEY = "gptbert.tied"
"""safetensors metadata entry: JSON ``{alias: stored name}`` of tied tensors (as gptbert.checkpoint)."""
_CKPT_FORMAT = "gptbert-train-checkpoint"
_CKPT_VERSION = 1
_TMP_MARK = ".tmp-"

StopReason = Literal["max_steps", "max_epochs", "time_budget", "early_stopping", "interrupted"]


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------


@dataclass
class TrainArgs:
    """Everything :func:`fit` needs besides the model and the data."""

    out_dir: str | None = None
    """Directory for checkpoints, metrics.jsonl, TensorBoard events and the final model; unset: write no files."""
    max_steps: int | None = None
    """Stop after this many optimizer steps."""
    max_epochs: int | None = None
    """Stop after this many passes over the training data."""
    time_budget: str | None = None
    """Stop once this much wall-clock time is spent, e.g. '90s', '10m', '1h30m' (evaluations and the
    earlier runs of a resumed job count)."""
    batch_size: int = 32
    """Examples per micro-batch on each process; a step sees batch_size x grad_accum x processes examples."""
    grad_accum: int = 1
    """Micro-batches whose gradients are accumulated before each optimizer step."""
    drop_last: bool = False
    """Drop the last, incomplete micro-batch of each epoch."""
    shuffle: bool = True
    """Shuffle the training examples each epoch (permutation seeded by seed + epoch)."""
    lr: float = 3e-4
    """Peak learning rate (AdamW)."""
    min_lr: float = 0.0
    """Learning rate at the end of the decay (linear, cosine) and floor of the exponential decay."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay."""
    no_decay_norm_bias_embed: bool = True
    """No weight decay for biases, normalisation layers and embeddings."""
    beta1: float = 0.9
    """AdamW beta1."""
    beta2: float = 0.999
    """AdamW beta2."""
    eps: float = 1e-8
    """AdamW epsilon."""
    schedule: Literal["constant", "linear", "cosine", "exponential"] = "linear"
    """Learning-rate schedule after the linear warmup."""
    warmup_steps: int = 0
    """Steps of linear warmup from 0 to lr."""
    warmup_ratio: float = 0.0
    """Warmup as a fraction of the total steps (used when warmup_steps is 0)."""
    decay_gamma: float = 0.9999
    """Per-step factor of the exponential schedule: lr x gamma^(step - warmup)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value; 0 = no clipping."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16: autocast matmuls to bfloat16 (weights and optimizer stay fp32)."""
    compile: bool = False
    """Wrap the model in torch.compile."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train: auto = cuda when available, else cpu."""
    seed: int = 0
    """Seed of all random generators (initial state of fit, shuffling, collate randomness)."""
    eval_every: int = 0
    """Evaluate every N steps; 0 = at the end of each epoch. Training always ends with an evaluation."""
    eval_metric: str = "loss"
    """Metric (a key returned by the evaluation) used for early stopping and the best model."""
    metric_mode: Literal["auto", "max", "min"] = "auto"
    """Whether eval_metric improves upwards or downwards; auto = min for loss/perplexity/error-like names, else max."""
    patience: int = 0
    """Early stopping: stop after this many evaluations without improvement; 0 = off."""
    save_every: int = 0
    """Save a resumable checkpoint every N steps; 0 = only at the end and on interruption."""
    keep_best: bool = True
    """Keep the best evaluated weights (best/) and load them into the model at the end."""
    log_every: int = 10
    """Write a metrics record every N steps."""
    progress: bool = True
    """Show a progress bar (only on a terminal)."""
    tensorboard: bool = True
    """Write TensorBoard events under out_dir/tb when tensorboard is installed."""
    resume: bool = False
    """Continue from out_dir/checkpoint.safetensors when it exists (start fresh otherwise)."""
    num_workers: int = 0
    """DataLoader worker processes building batches; 0 = in the training process."""
    find_unused_parameters: bool = False
    """Multi-process: let DistributedDataParallel tolerate parameters that get no gradient."""

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> ValueError:
            return ValueError(f"TrainArgs.{name}: expected {expected}, got {getattr(self, name)!r}")

        for name in ("batch_size", "grad_accum", "log_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise bad(name, "a positive integer")
        for name in ("max_steps", "max_epochs"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise bad(name, "a positive integer or None")
        for name in ("warmup_steps", "eval_every", "patience", "save_every", "num_workers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise bad(name, "a non-negative integer")
        if not self.lr > 0:
            raise bad("lr", "a positive number")
        if not 0 <= self.min_lr <= self.lr:
            raise bad("min_lr", f"a number in [0, lr={self.lr}]")
        if not 0 <= self.warmup_ratio < 1:
            raise bad("warmup_ratio", "a number in [0, 1)")
        if not 0 < self.decay_gamma <= 1:
            raise bad("decay_gamma", "a number in (0, 1]")
        if self.grad_clip < 0:
            raise bad("grad_clip", "a non-negative number")
        if self.weight_decay < 0:
            raise bad("weight_decay", "a non-negative number")
        choices = {
            "schedule": ("constant", "linear", "cosine", "exponential"),
            "precision": ("fp32", "bf16"),
            "metric_mode": ("auto", "max", "min"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise bad(name, " | ".join(allowed))
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(self.device)):
            raise bad("device", "auto | cpu | cuda | cuda:N")
        if self.time_budget is not None:
            parse_duration(self.time_budget)  # raises a clear error
        if self.resume and not self.out_dir:
            raise ValueError("TrainArgs.resume needs out_dir (where the checkpoint lives)")

    @property
    def time_budget_s(self) -> float | None:
        """The time budget in seconds (None when unset)."""
        return None if self.time_budget is None else parse_duration(self.time_budget)


_DURATION_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([dhms])")


def parse_duration(text: str | float | int) -> float:
    """Seconds in a duration such as ``"90s"``, ``"10m"``, ``"1h30m"``, ``"1.5h"`` or ``"45"`` (s)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        s = str(text).strip().lower()
        error = ValueError(
            f"invalid duration {text!r}: expected e.g. '90s', '10m', '1h30m', '2d' or a number of seconds"
        )
        if re.fullmatch(r"\d+(?:\.\d*)?|\.\d+", s):
            seconds = float(s)
        else:
            seconds, pos = 0.0, 0
            for m in _DURATION_PART.finditer(s):
                if m.start() != pos:
                    raise error
                seconds += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
                pos = m.end()
            if pos == 0 or s[pos:].strip():
                raise error
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    return seconds


# --------------------------------------------------------------------------------------------
# Devices, processes, seeds
# --------------------------------------------------------------------------------------------


class WorldInfo(NamedTuple):
    rank: int
    local_rank: int
    world_size: int


def world_info() -> WorldInfo:
    """(rank, local_rank, world_size): from torch.distributed when initialised, else torchrun's env."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():
        return WorldInfo(dist.get_rank(), local_rank, dist.get_world_size())
    return WorldInfo(int(os.environ.get("RANK", "0")), local_rank, int(os.environ.get("WORLD_SIZE", "1")))


def is_main_process() -> bool:
    """True on rank 0 (and in a single-process run)."""
    return world_info().rank == 0


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → cuda when available else cpu; ``cuda`` picks ``cuda:LOCAL_RANK`` under torchrun."""
    name = str(name).strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if re.fullmatch(r"cuda(:\d+)?", name):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {name!r} requested but CUDA is not available (torch {torch.__version__}); use --device cpu"
            )
        if name == "cuda":
            index = world_info().local_rank if world_info().world_size > 1 else torch.cuda.current_device()
            name = f"cuda:{index}"
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) visible")
        return device
    raise ValueError(f"unknown device {name!r}: expected auto, cpu, cuda or cuda:N")


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _derived_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (any sign) with numpy's SeedSequence."""
    entropy = [int(p) % 2**64 for p in parts]
    state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


@contextlib.contextmanager
def _isolated_rng(seed: int) -> Iterator[None]:
    """Seed torch-CPU/numpy/python generators for the block, then put their previous state back."""
    t_state, n_state, p_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    torch.default_generator.manual_seed(seed)  # CPU only: leaves the CUDA generators alone
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(t_state)
        np.random.set_state(n_state)
        random.setstate(p_state)


# --------------------------------------------------------------------------------------------
# Learning rate and optimizer
# --------------------------------------------------------------------------------------------


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


def param_groups(
    model: nn.Module, weight_decay: float, *, no_decay_norm_bias_embed: bool = True
) -> list[dict[str, Any]]:
    """AdamW parameter groups: ``[{"params": decayed, "weight_decay": wd}, {"params": rest, 0.0}]``.

    With ``no_decay_norm_bias_embed``, a parameter is exempt from decay when any module owning it
    is a normalisation layer or an embedding (by type, so a tied output projection counts as the
    embedding), or when it has fewer than 2 dimensions (biases, gains, custom norms). Frozen
    parameters are left out; shared parameters appear once. Empty groups are omitted.
    """
    exempt: set[int] = set()
    if no_decay_norm_bias_embed:
        for module in model.modules():
            special = isinstance(module, _NO_DECAY_MODULES)
            for p in module.parameters(recurse=False):
                if special or p.ndim < 2:
                    exempt.add(id(p))
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():  # deduplicates shared parameters
        if p.requires_grad:
            (no_decay if id(p) in exempt else decay).append(p)
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    if not groups:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    return groups


def build_optimizer(model: nn.Module, args: TrainArgs) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`; fused kernels when the parameters live on CUDA."""
    groups = param_groups(model, args.weight_decay, no_decay_norm_bias_embed=args.no_decay_norm_bias_embed)
    on_cuda = all(p.is_cuda for g in groups for p in g["params"])
    return torch.optim.AdamW(
        groups, lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps, fused=True if on_cuda else None
    )


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def epoch_indices(
    n: int, *, epoch: int, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1
) -> list[int]:
    """This process's example order for one epoch.

    The permutation comes from ``seed + epoch`` and is the same on every process; it is padded
    (wrapping around) to a multiple of ``world_size`` and each process takes
    ``order[rank::world_size]``, so all processes get the same number of examples.
    """
    if n <= 0:
        raise ValueError("the training data set is empty")
    if shuffle:
        g = torch.Generator().manual_seed(seed + epoch)
        order = torch.randperm(n, generator=g).tolist()
    else:
        order = list(range(n))
    if world_size > 1:
        padded = -(-n // world_size) * world_size
        while len(order) < padded:
            order += order[: padded - len(order)]
        order = order[rank::world_size]
    return order


def epoch_batches(
    n: int,
    *,
    epoch: int,
    seed: int,
    batch_size: int,
    shuffle: bool = True,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> list[list[int]]:
    """:func:`epoch_indices` cut into micro-batches of ``batch_size`` example indices."""
    order = epoch_indices(n, epoch=epoch, seed=seed, shuffle=shuffle, rank=rank, world_size=world_size)
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    return [order[i : i + batch_size] for i in range(0, stop, batch_size)]


def count_tokens(batch: Mapping[str, Any]) -> int:
    """``attention_mask.sum()`` when present, else ``idx.numel()`` (or ``input_ids``), else 0."""
    mask = batch.get("attention_mask")
    if isinstance(mask, Tensor):
        return int(mask.sum())
    for key in ("idx", "input_ids"):
        value = batch.get(key)
        if isinstance(value, Tensor):
            return value.numel()
    return 0


class _BatchSource(torch.utils.data.Dataset):
    """Map-style data set of whole collated micro-batches: item ``j`` = batch ``j`` of an epoch.

    Reading examples and collating run under generators seeded from (seed, epoch, rank, j), so any
    randomness there (e.g. MLM masking) is reproducible, exactly resumable and independent of
    ``num_workers``, and it does not disturb the training process's generators.
    """

    def __init__(
        self,
        dataset: Any,
        batches: list[list[int]],
        collate_fn: Callable[[list[Any]], Any],
        seed_parts: tuple[int, ...],
    ) -> None:
        self.dataset, self.batches, self.collate_fn, self.seed_parts = dataset, batches, collate_fn, seed_parts

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, j: int) -> tuple[dict[str, Any], int, int]:
        with _isolated_rng(_derived_seed(*self.seed_parts, j)):
            examples = [self.dataset[i] for i in self.batches[j]]
            batch = self.collate_fn(examples)
        if not isinstance(batch, Mapping):
            raise TypeError(f"collate_fn must return a dict of tensors, got {type(batch).__name__}")
        return dict(batch), len(examples), count_tokens(batch)


def _passthrough(item: Any) -> Any:
    return item


def _iterate(source: _BatchSource, start: int, num_workers: int, pin: bool) -> Iterator[tuple[dict, int, int]]:
    if num_workers == 0:
        return (source[j] for j in range(start, len(source)))
    loader = torch.utils.data.DataLoader(
        source,
        batch_size=None,
        sampler=range(start, len(source)),
        collate_fn=_passthrough,
        num_workers=num_workers,
        pin_memory=pin,
        # Its own generator: creating the iterator must not draw from the global torch RNG (that
        # would shift dropout masks); our batches are seeded by position anyway.
        generator=torch.Generator().manual_seed(_derived_seed(*source.seed_parts, start)),
    )
    return iter(loader)


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if isinstance(v, Tensor) else v for k, v in batch.items()}


def _extract_loss(out: Any, where: str) -> Tensor:
    """The loss in a model/loss_fn output: a tensor, ``(logits, loss)``, ``{"loss": ...}`` or ``.loss``."""
    if isinstance(out, Tensor):
        loss = out
    elif isinstance(out, Mapping) and "loss" in out:
        loss = out["loss"]
    elif isinstance(out, (tuple, list)) and len(out) == 2:
        loss = out[1]
    elif hasattr(out, "loss"):
        loss = out.loss
    else:
        raise TypeError(
            f"{where} must return (logits, loss), a dict with 'loss' or a loss tensor; got {type(out).__name__}"
        )
    if loss is None:
        raise ValueError(f"{where} returned loss=None: does the batch contain the targets/labels?")
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, Tensor) else ""
        raise TypeError(f"{where} must give a scalar loss tensor, got {type(loss).__name__} {shape}")
    return loss.reshape(())


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside torch.compile and DistributedDataParallel wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod  # type: ignore[assignment]
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


@torch.no_grad()
def evaluate_loss(
    model: nn.Module,
    dataset: Any,
    collate_fn: Callable[[list[Any]], Any],
    *,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    precision: str = "fp32",
    loss_fn: Callable[[nn.Module, dict[str, Any]], Any] | None = None,
    seed: int = 0,
    num_workers: int = 0,
) -> dict[str, float]:
    """Mean loss over ``dataset`` (weighted by examples per batch) as ``{"loss": value}``.

    Under torch.distributed every process evaluates its strided share (no padding) and the sums
    are all-reduced, so all processes must call it. The model's train/eval mode is restored.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    rank, _, world = world_info()
    n = len(dataset)
    if n == 0:
        raise ValueError("the evaluation data set is empty")
    order = list(range(rank, n, world))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    source = _BatchSource(dataset, batches, collate_fn, (seed, -1, rank))
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)  # sum of loss * examples
    count = 0
    try:
        for batch, n_ex, _ in _iterate(source, 0, num_workers, device.type == "cuda"):
            batch = _to_device(batch, device)
            with _autocast(device, precision):
                out = loss_fn(model, batch) if loss_fn is not None else model(**batch)
            total += _extract_loss(out, "loss_fn" if loss_fn is not None else "model").double() * n_ex
            count += n_ex
    finally:
        model.train(was_training)
    if world > 1 and dist.is_initialized():
        both = torch.stack([total, torch.tensor(float(count), dtype=torch.float64, device=device)])
        dist.all_reduce(both)
        total, count = both[0], int(both[1].item())
    return {"loss": float(total.item()) / count}


# --------------------------------------------------------------------------------------------
# Safetensors I/O (atomic)
# --------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` into a temp file beside ``path``, fsync, then ``os.replace`` it over ``path``.

    A crash or kill at any point leaves either the old file or the new one, never a mix; a failed
    write removes its temp file and leaves ``path`` untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _remove_stale_temp_files(directory: Path) -> None:
    """Delete temp files that a killed writer left behind."""
    for pattern in (f".*{_TMP_MARK}*", f"{BEST_DIR}/.*{_TMP_MARK}*"):
        for p in directory.glob(pattern):
            with contextlib.suppress(OSError):
                p.unlink()


def _dedupe_tensors(state: Mapping[str, Tensor], prefix: str = "") -> tuple[dict[str, Tensor], dict[str, str]]:
    """CPU tensors ready for safetensors, plus ``{alias: stored name}`` for tied (identical) tensors.

    Tensors that only partly share memory with another one are copied (safetensors refuses
    shared memory).
    """
    tensors: dict[str, Tensor] = {}
    aliases: dict[str, str] = {}
    views: dict[tuple[Any, ...], str] = {}
    storages: set[tuple[str, int]] = set()
    for name, t in state.items():
        t = t.detach()
        shared = False
        if t.numel() > 0:
            view = (str(t.device), t.data_ptr(), t.dtype, tuple(t.shape), t.stride())
            if view in views:
                aliases[name] = views[view]
                continue
            views[view] = name
            storage = (str(t.device), t.untyped_storage().data_ptr())
            shared = storage in storages
            storages.add(storage)
        t = t.to("cpu")
        tensors[prefix + name] = t.clone() if shared else t.contiguous()
    return tensors, aliases


def save_model_weights(
    path: str | Path, model: nn.Module | Mapping[str, Tensor], metadata: Mapping[str, Any] | None = None
) -> None:
    """Write a model's state dict to a safetensors file, atomically.

    Tied tensors are stored once; the file's metadata lists the aliases (``gptbert.tied``, the
    convention of ``gptbert.checkpoint``) so :func:`load_model_weights` restores them.
    ``metadata`` values are stored as JSON strings.
    """
    from safetensors.torch import save_file

    state = _unwrap(model).state_dict() if isinstance(model, nn.Module) else model
    tensors, aliases = _dedupe_tensors(state)
    meta = {"format": "pt", _TIED_KEY: json.dumps(aliases)}
    for k, v in (metadata or {}).items():
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v)
    _atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def _save_model_dir(directory: Path, model: nn.Module, metadata: Mapping[str, Any]) -> None:
    """``model.safetensors`` and, when the model carries a config with ``to_dict()`` (gptbert models
    do), ``config.json``: together a directory that ``gptbert.checkpoint.load_model`` reads."""
    save_model_weights(directory / MODEL_FILE, model, metadata=metadata)
    config = getattr(_unwrap(model), "config", None)
    if callable(getattr(config, "to_dict", None)):
        text = json.dumps(config.to_dict(), indent=2) + "\n"  # type: ignore[union-attr]
        _atomic_write(directory / CONFIG_FILE, lambda tmp: tmp.write_text(text))


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise
    except Exception as e:  # SafetensorError and friends: a truncated or foreign file
        raise RuntimeError(f"{path} is not a readable safetensors file ({e})") from e
    return tensors, meta


def load_model_weights(model: nn.Module, path: str | Path, *, strict: bool = True) -> dict[str, str]:
    """Load weights written by :func:`save_model_weights` (or any safetensors state dict) into ``model``.

    Returns the file's metadata.
    """
    tensors, meta = _read_safetensors(Path(path))
    aliases = json.loads(meta.get(_TIED_KEY, "{}"))
    for alias, name in aliases.items():
        tensors[alias] = tensors[name]
    _unwrap(model).load_state_dict(tensors, strict=strict)
    return meta


def _rng_snapshot() -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda/{i}"] = s
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss_next = random.getstate()
    info = {"numpy": [name, int(pos), int(has_gauss), float(gauss)], "python": [version, list(internal), gauss_next]}
    return tensors, info


def _rng_restore(tensors: Mapping[str, Tensor], info: Mapping[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda/{i}"] for i in range(len(tensors)) if f"cuda/{i}" in tensors]
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            torch.cuda.set_rng_state(cuda[0])
    name, pos, has_gauss, gauss = info["numpy"]
    np.random.set_state((name, tensors["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = info["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _save_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    rng_per_rank: list[tuple[dict[str, Tensor], dict[str, Any]]],
) -> None:
    """One safetensors file: ``model/*``, ``optim/<param>/<key>``, ``rng/<rank>/*`` + JSON metadata."""
    from safetensors.torch import save_file

    tensors, aliases = _dedupe_tensors(_unwrap(model).state_dict(), prefix="model/")
    opt = optimizer.state_dict()
    opt_scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in opt["state"].items():
        for key, value in pstate.items():
            if isinstance(value, Tensor):
                tensors[f"optim/{pid}/{key}"] = value.detach().to("cpu").clone()
            else:
                opt_scalars.setdefault(str(pid), {})[key] = value
    rng_info = []
    for r, (rng_tensors, info) in enumerate(rng_per_rank):
        for key, value in rng_tensors.items():
            tensors[f"rng/{r}/{key}"] = value.detach().to("cpu").clone()
        rng_info.append(info)
    payload = {
        **state,
        "model_aliases": aliases,
        "optim_param_groups": opt["param_groups"],
        "optim_scalars": opt_scalars,
        "rng": rng_info,
    }
    meta = {"format": _CKPT_FORMAT, "version": str(_CKPT_VERSION), "state": json.dumps(payload)}
    _atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def _read_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors, meta = _read_safetensors(path)
    if meta.get("format") != _CKPT_FORMAT:
        raise RuntimeError(f"{path} is not a gptbert training checkpoint (format={meta.get('format')!r})")
    if meta.get("version") != str(_CKPT_VERSION):
        raise RuntimeError(f"{path}: checkpoint version {meta.get('version')!r} unsupported (expected {_CKPT_VERSION})")
    return tensors, json.loads(meta["state"])


def _apply_checkpoint(
    tensors: Mapping[str, Tensor],
    state: Mapping[str, Any],
    model: nn.Module | None,
    optimizer: torch.optim.Optimizer | None,
    rng_rank: int | None,
) -> None:
    if model is not None:
        weights = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
        for alias, name in state["model_aliases"].items():
            weights[alias] = weights[name]
        _unwrap(model).load_state_dict(weights)
    if optimizer is not None:
        opt_state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("optim/"):
                _, pid, key = k.split("/", 2)
                opt_state.setdefault(int(pid), {})[key] = v
        for pid, extra in state["optim_scalars"].items():
            opt_state.setdefault(int(pid), {}).update(extra)
        groups = [
            {**g, "betas": tuple(g["betas"])} if isinstance(g.get("betas"), list) else dict(g)
            for g in state["optim_param_groups"]
        ]
        if len(groups) != len(optimizer.param_groups) or any(
            len(g["params"]) != len(h["params"]) for g, h in zip(groups, optimizer.param_groups)
        ):
            raise ValueError(
                "the checkpoint's optimizer has different parameter groups (another model, other trainable "
                "parameters, or another no_decay_norm_bias_embed setting)"
            )
        # The hyper-parameters come from the current optimizer (i.e. the current TrainArgs).
        current = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
        for g, hyper in zip(optimizer.param_groups, current):
            g.update(hyper)
    if rng_rank is not None:
        if rng_rank >= len(state["rng"]):
            raise RuntimeError(
                f"the checkpoint holds RNG states of {len(state['rng'])} process(es), none for rank {rng_rank}"
            )
        prefix = f"rng/{rng_rank}/"
        _rng_restore({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, state["rng"][rng_rank])


def load_checkpoint(
    path: str | Path,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    restore_rng: bool = False,
    rank: int | None = None,
) -> dict[str, Any]:
    """Read a training checkpoint; load the model/optimizer when given; optionally restore RNGs.

    Returns the JSON state: ``progress`` (step, epoch, batch_in_epoch, history, ...), ``args``,
    ``world_size``, ``dataset_len``. Raises ``RuntimeError`` for a truncated or foreign file.
    """
    tensors, state = _read_checkpoint(Path(path))
    rng_rank = (world_info().rank if rank is None else rank) if restore_rng else None
    _apply_checkpoint(tensors, state, model, optimizer, rng_rank)
    return state


# --------------------------------------------------------------------------------------------
# Results, state, callbacks
# --------------------------------------------------------------------------------------------


@dataclass
class FitResult:
    """What :func:`fit` returns (also stored, so far, in every checkpoint)."""

    steps: int
    epochs: float
    """Passes over the training data, fractional (2.5 = in the middle of the third epoch)."""
    stop_reason: StopReason
    best_metric: float | None
    best_step: int | None
    metric_name: str | None
    wall_time: float
    """Seconds of wall-clock time, all runs of a resumed job together."""
    train_time: float
    """Seconds spent in training steps (no evaluation, no checkpointing)."""
    tokens: int
    tokens_per_s: float
    train_loss: float | None
    """Mean training loss over the last logging window."""
    eval_metrics: dict[str, float] = field(default_factory=dict)
    """The last evaluation's metrics."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """Every metrics.jsonl record."""
    out_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainState:
    """What callbacks see. ``model`` is the wrapped (DDP/compiled) module, ``raw_model`` the plain one."""

    args: TrainArgs
    model: nn.Module
    raw_model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    rank: int
    world_size: int
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    lr: float = 0.0


class Callback:
    """Base class of training hooks; override any subset. Hooks run on every process."""

    def on_train_begin(self, state: TrainState) -> None:
        """After setup (and after loading a checkpoint when resuming)."""

    def on_before_optimizer_step(self, state: TrainState) -> None:
        """Gradients are accumulated, all-reduced and clipped; ``state.step`` is the update's index."""

    def on_step_end(self, state: TrainState, loss: Tensor) -> None:
        """After update ``state.step`` (counted from 1); ``loss``: the step's mean loss (over processes too)."""

    def on_log(self, state: TrainState, record: dict[str, Any]) -> None:
        """A metrics record was written (train or eval)."""

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        """After an evaluation."""

    def on_save(self, state: TrainState, path: Path) -> None:
        """After a checkpoint was written (rank 0)."""

    def on_train_end(self, state: TrainState, result: FitResult) -> None:
        """Just before :func:`fit` returns."""


def _call(callbacks: Sequence[Any], hook: str, *args: Any) -> None:
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(*args)


@dataclass
class _Progress:
    """Training position and results so far: JSON in the checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens: int = 0
    train_time: float = 0.0
    elapsed: float = 0.0
    best_metric: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    last_eval_step: int | None = None
    last_eval: dict[str, float] = field(default_factory=dict)
    train_loss: float | None = None
    window_loss: float = 0.0
    window_steps: int = 0
    window_tokens: int = 0
    window_time: float = 0.0
    window_grad_norm: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def _metric_mode(name: str, mode: str) -> str:
    if mode != "auto":
        return mode
    lowered = name.lower()
    return "min" if any(w in lowered for w in ("loss", "ppl", "perplexity", "error", "err", "wer", "cer")) else "max"


class _SignalFlag:
    """SIGINT/SIGTERM set a flag (the loop saves and stops); a second SIGINT raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> _SignalFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


def fit(
    model: nn.Module,
    args: TrainArgs,
    train_data: Any,
    collate_fn: Callable[[list[Any]], Mapping[str, Any]],
    *,
    eval_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
    dev_data: Any | None = None,
    dev_collate_fn: Callable[[list[Any]], Mapping[str, Any]] | None = None,
    callbacks: Sequence[Callback | Any] = (),
    loss_fn: Callable[[nn.Module, dict[str, Any]], Any] | None = None,
) -> FitResult:
    """Train ``model`` in place and return a :class:`FitResult`.

    ``train_data``: map-style data set (``len`` + ``[i]`` → one example); ``collate_fn`` turns a
    list of examples into a batch dict. Evaluation: ``eval_fn(model) -> {metric: value}`` (called
    on rank 0 with the plain model in eval mode, under no_grad and the run's autocast; the result
    is broadcast) or, if absent, the mean loss over ``dev_data`` (collated by ``dev_collate_fn``,
    default ``collate_fn``). ``loss_fn(model, batch)`` replaces ``model(**batch)``; it receives the
    wrapped (DDP/compiled) model and returns a loss tensor (or ``(logits, loss)``).

    Stops at ``max_steps``, ``max_epochs``, the ``time_budget``, early stopping, or SIGINT/SIGTERM
    (the current step finishes, a checkpoint is saved, stop_reason = "interrupted"). Under torchrun
    (``WORLD_SIZE`` > 1) it initialises torch.distributed if needed, wraps the model in
    DistributedDataParallel, shards the data, and logs/saves on rank 0 only.

    The global RNGs are reseeded from ``args.seed`` (+ rank) on a fresh start (and restored from
    the checkpoint when resuming); seed and build the model before calling ``fit``.
    """
    if args.max_steps is None and args.max_epochs is None and args.time_budget is None:
        raise ValueError("fit: set at least one of max_steps, max_epochs or time_budget")
    if args.patience > 0 and eval_fn is None and dev_data is None:
        raise ValueError("fit: early stopping (patience > 0) needs eval_fn or dev_data")
    if not hasattr(train_data, "__len__") or not hasattr(train_data, "__getitem__"):
        raise TypeError("fit: train_data must be a map-style data set (with __len__ and __getitem__)")
    device = resolve_device(args.device)
    created_group = False
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        created_group = True
    try:
        trainer = _Trainer(
            model, args, train_data, collate_fn, device,
            eval_fn=eval_fn, dev_data=dev_data, dev_collate_fn=dev_collate_fn or collate_fn,
            callbacks=list(callbacks), loss_fn=loss_fn,
        )
        return trainer.run()
    finally:
        if created_group and dist.is_initialized():
            dist.destroy_process_group()


class _Trainer:
    def __init__(
        self,
        model: nn.Module,
        args: TrainArgs,
        train_data: Any,
        collate_fn: Callable[[list[Any]], Mapping[str, Any]],
        device: torch.device,
        *,
        eval_fn: Callable[[nn.Module], Mapping[str, float]] | None,
        dev_data: Any | None,
        dev_collate_fn: Callable[[list[Any]], Mapping[str, Any]],
        callbacks: list[Any],
        loss_fn: Callable[[nn.Module, dict[str, Any]], Any] | None,
    ) -> None:
        self.args, self.device = args, device
        self.train_data, self.collate_fn = train_data, collate_fn
        self.eval_fn, self.dev_data, self.dev_collate_fn = eval_fn, dev_data, dev_collate_fn
        self.callbacks, self.loss_fn = callbacks, loss_fn
        self.rank, _, self.world = world_info()
        self.main = self.rank == 0
        self.distributed = self.world > 1 and dist.is_initialized()
        self.out_dir = Path(args.out_dir) if args.out_dir else None
        self.budget = args.time_budget_s
        self.metric_name = args.eval_metric.removeprefix("eval_")
        self.mode = _metric_mode(self.metric_name, args.metric_mode)
        self.has_eval = eval_fn is not None or dev_data is not None
        self.n = len(train_data)
        self.batches_per_epoch = len(self._batches(0))
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"fit: no complete batch: {self.n} examples over {self.world} process(es) with "
                f"batch_size={args.batch_size} and drop_last=True"
            )
        self.steps_per_epoch = -(-self.batches_per_epoch // args.grad_accum)
        self.raw_model = model.to(device)
        self.optimizer = build_optimizer(self.raw_model, args)
        self.progress = _Progress()
        self.best_in_memory: dict[str, Tensor] | None = None
        self.metrics_file = None
        self.tb = None

    # ---- helpers -----------------------------------------------------------------------------

    def _batches(self, epoch: int) -> list[list[int]]:
        a = self.args
        return epoch_batches(
            self.n, epoch=epoch, seed=a.seed, batch_size=a.batch_size, shuffle=a.shuffle,
            drop_last=a.drop_last, rank=self.rank, world_size=self.world,
        )

    def _elapsed(self) -> float:
        return self.elapsed_base + (time.monotonic() - self.t0)

    def _schedule_total(self, step: int, elapsed: float) -> float | None:
        """Steps the schedule decays over: the limit expected to come first.

        With a time budget the total is re-estimated every step as ``step * budget / elapsed``
        (i.e. progress = fraction of the budget spent, evaluations included), so the LR reaches
        min_lr when the budget runs out; before the first step it is unknown (inf).
        """
        a = self.args
        total: float | None = None
        if a.max_steps is not None:
            total = float(a.max_steps)
        if a.max_epochs is not None:
            e = float(a.max_epochs * self.steps_per_epoch)
            total = e if total is None else min(total, e)
        if self.budget is not None:
            t = step * self.budget / elapsed if step > 0 and elapsed > 0 else math.inf
            total = t if total is None else min(total, t)
        return total

    def _lr(self, step: int, elapsed: float) -> tuple[float, float | None]:
        a = self.args
        total = self._schedule_total(step, elapsed)
        warmup: float = a.warmup_steps
        if warmup == 0 and a.warmup_ratio > 0 and total is not None:
            warmup = round(a.warmup_ratio * total) if math.isfinite(total) else math.inf
        lr = lr_at(step, schedule=a.schedule, base_lr=a.lr, min_lr=a.min_lr, warmup_steps=warmup,
                   total_steps=total, gamma=a.decay_gamma)
        return lr, total

    def _epochs_float(self) -> float:
        p = self.progress
        return p.epoch + p.batch_in_epoch / self.batches_per_epoch

    def _write_record(self, record: dict[str, Any]) -> None:
        self.progress.history.append(record)
        if self.main:
            if self.metrics_file is not None:
                self.metrics_file.write(json.dumps(record) + "\n")
                self.metrics_file.flush()
            if self.tb is not None:
                kind = record["kind"]
                for k, v in record.items():
                    if k in ("kind", "step") or not isinstance(v, (int, float)) or isinstance(v, bool):
                        continue
                    tag = f"eval/{k.removeprefix('eval_')}" if kind == "eval" else f"train/{k}"
                    self.tb.add_scalar(tag, v, record["step"])
        _call(self.callbacks, "on_log", self.state, record)

    def _compute_loss(self, batch: dict[str, Any]) -> Tensor:
        if self.loss_fn is not None:
            return _extract_loss(self.loss_fn(self.model, batch), "loss_fn")
        return _extract_loss(self.model(**batch), "model")

    # ---- setup -------------------------------------------------------------------------------

    def _setup_files(self, resumed: bool) -> None:
        if self.out_dir is None or not self.main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_temp_files(self.out_dir)
        metrics_path = self.out_dir / METRICS_FILE
        if resumed:  # drop records written after the checkpoint by the run that died
            text = "".join(json.dumps(r) + "\n" for r in self.progress.history)
            _atomic_write(metrics_path, lambda tmp: tmp.write_text(text))
        self.metrics_file = open(metrics_path, "a" if resumed else "w", encoding="utf-8")
        if self.args.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except Exception:  # tensorboard not installed (or broken): skip silently
                SummaryWriter = None  # noqa: N806
            if SummaryWriter is not None:
                purge = self.progress.step + 1 if resumed else None
                self.tb = SummaryWriter(log_dir=str(self.out_dir / "tb"), purge_step=purge)

    def _try_resume(self) -> bool:
        if not self.args.resume or self.out_dir is None:
            return False
        path = self.out_dir / CHECKPOINT_FILE
        if not path.exists():
            if self.main:
                log.info("resume: no checkpoint at %s, starting fresh", path)
            return False
        tensors, state = _read_checkpoint(path)
        saved = state["args"]
        for key in ("batch_size", "grad_accum", "seed", "drop_last", "shuffle"):
            if saved.get(key) != getattr(self.args, key):
                raise ValueError(
                    f"resume: {key} differs from the checkpoint's ({saved.get(key)!r} there, "
                    f"{getattr(self.args, key)!r} now); the data position would not match"
                )
        if state["world_size"] != self.world:
            raise ValueError(
                f"resume: the checkpoint was written by {state['world_size']} process(es), now {self.world}"
            )
        if state["dataset_len"] != self.n:
            raise ValueError(f"resume: the training set had {state['dataset_len']} examples, now {self.n}")
        _apply_checkpoint(tensors, state, self.raw_model, self.optimizer, self.rank)
        self.progress = _Progress(**state["progress"])
        if self.main:
            log.info("resumed from %s at step %d (epoch %d, batch %d)", path, self.progress.step,
                     self.progress.epoch, self.progress.batch_in_epoch)
        return True

    # ---- checkpoints and evaluation ----------------------------------------------------------

    def _save(self) -> None:
        if self.out_dir is None:
            return
        p = self.progress
        p.elapsed = self._elapsed()
        rng = _rng_snapshot()
        if self.distributed:
            gathered: list[Any] = [None] * self.world
            dist.all_gather_object(gathered, rng)
            rng_all = gathered
        else:
            rng_all = [rng]
        if self.main:
            state = {
                "progress": asdict(p),
                "args": asdict(self.args),
                "world_size": self.world,
                "dataset_len": self.n,
            }
            path = self.out_dir / CHECKPOINT_FILE
            _save_checkpoint(path, self.raw_model, self.optimizer, state, rng_all)
            _call(self.callbacks, "on_save", self.state, path)
        self.last_save_step = p.step

    def _evaluate(self) -> dict[str, float]:
        model = self.raw_model
        if self.eval_fn is not None:
            metrics: dict[str, float] | None = None
            if self.main:
                was_training = model.training
                model.eval()
                try:
                    with torch.no_grad(), _autocast(self.device, self.args.precision):
                        metrics = {k: float(v) for k, v in dict(self.eval_fn(model)).items()}
                finally:
                    model.train(was_training)
            if self.distributed:
                box = [metrics]
                dist.broadcast_object_list(box, src=0)
                metrics = box[0]
            assert metrics is not None
            return metrics
        return evaluate_loss(
            model, self.dev_data, self.dev_collate_fn, batch_size=self.args.batch_size, device=self.device,
            precision=self.args.precision, seed=self.args.seed, num_workers=self.args.num_workers,
        )

    def _run_eval(self) -> None:
        """Evaluate, track the best model and the evaluations without improvement."""
        p = self.progress
        t = time.monotonic()
        metrics = self._evaluate()
        if self.metric_name not in metrics:
            raise KeyError(
                f"eval_metric {self.metric_name!r} not among the evaluation's metrics {sorted(metrics)}"
            )
        value = metrics[self.metric_name]
        better = p.best_metric is None or (value > p.best_metric if self.mode == "max" else value < p.best_metric)
        if better and math.isfinite(value):
            p.best_metric, p.best_step, p.bad_evals = value, p.step, 0
            if self.args.keep_best:
                self._save_best(metrics)
        else:
            p.bad_evals += 1
        p.last_eval_step, p.last_eval = p.step, metrics
        record: dict[str, Any] = {"kind": "eval", "step": p.step, "epoch": self._epochs_float()}
        record.update({f"eval_{k}": v for k, v in metrics.items()})
        record.update(best=bool(better), eval_seconds=time.monotonic() - t, elapsed=self._elapsed())
        self._write_record(record)
        _call(self.callbacks, "on_evaluate", self.state, metrics)

    def _save_best(self, metrics: dict[str, float]) -> None:
        p = self.progress
        if self.out_dir is None:
            self.best_in_memory = {k: v.detach().to("cpu", copy=True) for k, v in self.raw_model.state_dict().items()}
            return
        if not self.main:
            return
        meta = {"step": p.step, "epoch": self._epochs_float(), "metric": self.metric_name,
                "value": metrics[self.metric_name], "metrics": metrics}
        best = self.out_dir / BEST_DIR
        _save_model_dir(best, self.raw_model, {"gptbert_best": meta})
        text = json.dumps(meta, indent=2)
        _atomic_write(best / "meta.json", lambda tmp: tmp.write_text(text))

    def _restore_best(self) -> None:
        p = self.progress
        if p.best_step is None or p.best_step == p.step:
            return
        if self.best_in_memory is not None:
            self.raw_model.load_state_dict(self.best_in_memory)
        elif self.out_dir is not None:
            if self.distributed:
                dist.barrier()  # rank 0 has finished writing best/
            load_model_weights(self.raw_model, self.out_dir / BEST_DIR / MODEL_FILE)

    # ---- the loop ----------------------------------------------------------------------------

    def _log_train(self, lr: float) -> None:
        p = self.progress
        if p.window_steps == 0:
            return
        loss = p.window_loss / p.window_steps
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"non-finite training loss ({loss}) at step {p.step}; lower lr, enable grad_clip or use fp32"
            )
        p.train_loss = loss
        record = {
            "kind": "train",
            "step": p.step,
            "epoch": self._epochs_float(),
            "loss": loss,
            "lr": lr,
            "grad_norm": p.window_grad_norm,
            "tokens": p.tokens,
            "tokens_per_s": p.window_tokens / p.window_time if p.window_time > 0 else 0.0,
            "elapsed": self._elapsed(),
        }
        self._write_record(record)
        if self.bar is not None:
            tok_s = f"{record['tokens_per_s']:.0f}"
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=tok_s, refresh=False)
        p.window_loss, p.window_steps, p.window_tokens, p.window_time = 0.0, 0, 0, 0.0

    def _limit_reached(self, signalled: bool, time_up: bool) -> str | None:
        a, p = self.args, self.progress
        if a.max_steps is not None and p.step >= a.max_steps:
            return "max_steps"
        if a.max_epochs is not None and p.epoch >= a.max_epochs:
            return "max_epochs"
        if a.patience > 0 and p.bad_evals >= a.patience:
            return "early_stopping"
        if time_up:
            return "time_budget"
        if signalled:
            return "interrupted"
        return None

    def _reduce(self, loss: Tensor, tokens: int) -> tuple[Tensor, int]:
        """Multi-process: the step loss averaged over processes, the tokens summed."""
        if not self.distributed:
            return loss, tokens
        vec = torch.stack([loss.double(), torch.tensor(float(tokens), dtype=torch.float64, device=loss.device)])
        dist.all_reduce(vec)
        return (vec[0] / self.world).float(), int(vec[1].item())

    def _sync_clock(self, signalled: bool) -> tuple[bool, float]:
        """(signal seen on any process, elapsed seconds): agreed by all processes.

        The elapsed time drives the time budget and, with one, the LR schedule; processes must
        agree on both or their weights (and their decision to stop) would drift apart.
        """
        elapsed = self._elapsed()
        if not self.distributed:
            return signalled, elapsed
        vec = torch.tensor([float(signalled), elapsed], dtype=torch.float64, device=self.device)
        dist.all_reduce(vec, op=dist.ReduceOp.MAX)
        flag, elapsed = vec.tolist()
        return flag > 0, elapsed

    def run(self) -> FitResult:
        a = self.args
        resumed = self._try_resume()
        if not resumed:
            seed_everything(a.seed + self.rank)
        self.last_save_step = self.progress.step if resumed else -1
        self._setup_files(resumed)

        model: nn.Module = self.raw_model
        self.ddp: nn.parallel.DistributedDataParallel | None = None
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = nn.parallel.DistributedDataParallel(
                model, device_ids=ids, find_unused_parameters=a.find_unused_parameters
            )
            model = self.ddp
        if a.compile:
            model = torch.compile(model)  # type: ignore[assignment]
        self.model = model
        self.state = TrainState(a, model, self.raw_model, self.optimizer, self.device, self.rank, self.world)
        trainable = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.raw_model.train()  # evaluations switch to eval() and back

        self.t0 = time.monotonic()
        self.elapsed_base = self.progress.elapsed
        p = self.progress
        self.bar = None
        show = a.progress and self.main and sys.stderr.isatty()
        if show:
            from tqdm.auto import tqdm

            total = self._schedule_total(p.step, self._elapsed())
            self.bar = tqdm(total=math.ceil(total) if total and math.isfinite(total) else None,
                            initial=p.step, unit="step", dynamic_ncols=True, file=sys.stderr)
        self.state.step, self.state.epoch, self.state.batch_in_epoch = p.step, p.epoch, p.batch_in_epoch
        _call(self.callbacks, "on_train_begin", self.state)

        stop: str | None = None
        clock = self._sync_clock(False)[1]  # elapsed time as of the end of the last step
        lr = self._lr(p.step, clock)[0]
        window_loss = torch.zeros((), dtype=torch.float64, device=self.device)  # sum of step losses
        window_loss += p.window_loss
        iterator: Iterator[tuple[dict, int, int]] | None = None
        clip_norm: Tensor | None = None  # the last step's gradient norm (when clipping)
        try:
            with _SignalFlag() as signals:
                stop = self._limit_reached(False, self.budget is not None and clock >= self.budget)
                while stop is None:
                    t_step = time.monotonic()
                    if iterator is None:
                        source = _BatchSource(self.train_data, self._batches(p.epoch), self.collate_fn,
                                              (a.seed, p.epoch, self.rank, 0))
                        iterator = _iterate(source, p.batch_in_epoch, a.num_workers, self.device.type == "cuda")
                    micro = list(islice(iterator, a.grad_accum))
                    if not micro:
                        raise RuntimeError(f"internal: epoch {p.epoch} ran out of batches at {p.batch_in_epoch}")
                    lr, total = self._lr(p.step, clock)
                    for g in self.optimizer.param_groups:
                        g["lr"] = lr
                    self.state.lr = lr
                    n_examples = sum(n for _, n, _ in micro)
                    step_loss = torch.zeros((), device=self.device)
                    step_tokens = 0
                    for i, (batch, n_ex, n_tok) in enumerate(micro):
                        batch = _to_device(batch, self.device)
                        sync = self.ddp is None or i == len(micro) - 1
                        with contextlib.nullcontext() if sync else self.ddp.no_sync():  # type: ignore[union-attr]
                            with _autocast(self.device, a.precision):
                                loss = self._compute_loss(batch)  # scalar
                            if not loss.requires_grad:
                                raise RuntimeError("the loss does not require grad: are all parameters frozen?")
                            weight = n_ex / n_examples
                            (loss * weight).backward()
                        step_loss += loss.detach().float() * weight
                        step_tokens += n_tok
                    grad_norm: Tensor | None = None  # before clipping
                    if a.grad_clip > 0:
                        grad_norm = clip_norm = torch.nn.utils.clip_grad_norm_(trainable, a.grad_clip)
                    elif (p.step + 1) % a.log_every == 0:  # only needed for the record
                        grads = [q.grad for q in trainable if q.grad is not None]
                        grad_norm = torch.nn.utils.get_total_norm(grads) if grads else None
                    self.state.step = p.step
                    _call(self.callbacks, "on_before_optimizer_step", self.state)
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)

                    p.step += 1
                    p.batch_in_epoch += len(micro)
                    epoch_end = p.batch_in_epoch >= self.batches_per_epoch
                    if epoch_end:
                        p.epoch, p.batch_in_epoch, iterator = p.epoch + 1, 0, None
                    step_loss, step_tokens = self._reduce(step_loss, step_tokens)
                    dt = time.monotonic() - t_step
                    p.tokens += step_tokens
                    p.train_time += dt
                    window_loss += step_loss
                    p.window_steps += 1
                    p.window_tokens += step_tokens
                    p.window_time += dt
                    self.state.step, self.state.epoch, self.state.batch_in_epoch = p.step, p.epoch, p.batch_in_epoch
                    _call(self.callbacks, "on_step_end", self.state, step_loss)
                    if self.bar is not None:
                        if total is not None and math.isfinite(total):
                            self.bar.total = math.ceil(total)
                        self.bar.update(1)

                    if p.step % a.log_every == 0:
                        p.window_grad_norm = None if grad_norm is None else float(grad_norm)
                        p.window_loss = float(window_loss.item())
                        window_loss.zero_()
                        self._log_train(lr)
                    if self.has_eval and (p.step % a.eval_every == 0 if a.eval_every > 0 else epoch_end):
                        self._run_eval()
                    if a.save_every > 0 and p.step % a.save_every == 0:
                        p.window_loss = float(window_loss.item())
                        self._save()
                    # Checked last, so evaluation time counts and a signal during this step is seen now.
                    signalled, clock = self._sync_clock(signals.signum is not None)
                    stop = self._limit_reached(signalled, self.budget is not None and clock >= self.budget)

                p.window_loss = float(window_loss.item())
                # The steps since the last record; an interrupted run keeps them in its checkpoint
                # instead, so that a resumed run writes the same records as an uninterrupted one.
                if p.window_steps and stop != "interrupted":
                    p.window_grad_norm = float(clip_norm) if clip_norm is not None else None
                    self._log_train(lr)
                    window_loss.zero_()
                if stop != "interrupted" and self.has_eval and p.last_eval_step != p.step and p.step > 0:
                    self._run_eval()
                if self.last_save_step != p.step:
                    self._save()
        finally:
            if self.bar is not None:
                self.bar.close()
            if self.metrics_file is not None:
                self.metrics_file.close()
                self.metrics_file = None
            if self.tb is not None:
                self.tb.close()
                self.tb = None

        if stop != "interrupted":
            if a.keep_best:
                self._restore_best()
            if self.out_dir is not None and self.main:
                meta = {"step": p.step, "stop_reason": stop, "best_step": p.best_step}
                _save_model_dir(self.out_dir, self.raw_model, {"gptbert_final": meta})
        if self.distributed:
            dist.barrier()
        wall = self._elapsed()
        result = FitResult(
            steps=p.step,
            epochs=self._epochs_float(),
            stop_reason=stop or "max_steps",  # type: ignore[arg-type]
            best_metric=p.best_metric,
            best_step=p.best_step,
            metric_name=self.metric_name if self.has_eval else None,
            wall_time=wall,
            train_time=p.train_time,
            tokens=p.tokens,
            tokens_per_s=p.tokens / p.train_time if p.train_time > 0 else 0.0,
            train_loss=p.train_loss,
            eval_metrics=dict(p.last_eval),
            history=list(p.history),
            out_dir=str(self.out_dir) if self.out_dir else None,
        )
        if self.main and stop is not None:
            log.info("training stopped (%s) at step %d after %.1fs", stop, p.step, wall)
        _call(self.callbacks, "on_train_end", self.state, result)
        return result
