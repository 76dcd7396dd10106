"""Losses and evaluations of the loop: the loss in a model's output, the dev loss, ``eval_fn`` runs.

Evaluation during :func:`gptbert.training.fit` is either the caller's ``eval_fn(model)`` (rank 0,
result broadcast: :func:`run_eval_fn`) or the mean loss over a dev set on every process
(:func:`evaluate_loss`). :func:`metric_mode` says whether a metric improves upwards or downwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from gptbert.precision import autocast
from gptbert.training.distributed import broadcast_from_main, world_info
from gptbert.training.sampling import BatchSource, iterate_batches, to_device

__all__ = ["evaluate_loss", "extract_loss", "improved", "metric_mode", "run_eval_fn"]


def extract_loss(out: Any, where: str) -> Tensor:
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
    source = BatchSource(dataset, batches, collate_fn, (seed, -1, rank))
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)  # sum of loss * examples
    count = 0
    try:
        for batch, n_ex, _ in iterate_batches(source, 0, num_workers, device.type == "cuda"):
            batch = to_device(batch, device)
            with autocast(precision, device):
                out = loss_fn(model, batch) if loss_fn is not None else model(**batch)
            total += extract_loss(out, "loss_fn" if loss_fn is not None else "model").double() * n_ex
            count += n_ex
    finally:
        model.train(was_training)
    if world > 1 and dist.is_initialized():
        both = torch.stack([total, torch.tensor(float(count), dtype=torch.float64, device=device)])
        dist.all_reduce(both)
        total, count = both[0], int(both[1].item())
    return {"loss": float(total.item()) / count}


def run_eval_fn(
    model: nn.Module,
    eval_fn: Callable[[nn.Module], Mapping[str, float]],
    *,
    device: torch.device,
    precision: str,
    main: bool,
    distributed: bool,
) -> dict[str, float]:
    """``eval_fn(model)`` on rank 0 (eval mode, no_grad, the run's autocast), broadcast to every process."""
    metrics: dict[str, float] | None = None
    if main:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), autocast(precision, device):
                metrics = {k: float(v) for k, v in dict(eval_fn(model)).items()}
        finally:
            model.train(was_training)
    metrics = broadcast_from_main(metrics, distributed=distributed)
    assert metrics is not None
    return metrics


def metric_mode(name: str, mode: str) -> str:
    """``mode`` unless it is "auto": then min for loss / perplexity / error-like names, else max."""
    if mode != "auto":
        return mode
    lowered = name.lower()
    return "min" if any(w in lowered for w in ("loss", "ppl", "perplexity", "error", "err", "wer", "cer")) else "max"


def improved(value: float, best: float | None, mode: str) -> bool:
    """Whether ``value`` beats ``best`` (None: nothing yet) in direction ``mode`` ("max" or "min")."""
    return best is None or (value > best if mode == "max" else value < best)
