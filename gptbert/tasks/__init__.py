"""Tasks: how each objective reads data, builds batches, and is scored.

One module per task family: ``pretrain`` (MLM+NSP, causal LM, bidirectional LM),
``classify`` (sequence and pair classification), ``tokens`` (BIO tagging), ``qa``
(extractive for BERT, generative for GPT), ``generate`` (conditional LM: summarization,
translation, dialogue) and ``extractive`` (BERT extractive summaries); ``registry``
dispatches fine-tuning, evaluation and prediction by task. Every module builds a map-style data
set plus a collate function for :func:`gptbert.training.fit` and an ``evaluate`` that
returns the task's metrics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn as nn


class ListDataset(torch.utils.data.Dataset):
    """A list of examples as a map-style data set."""

    def __init__(self, items: Sequence[Any]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]


def autocast(precision: str, device: torch.device | str = "cpu") -> contextlib.AbstractContextManager[Any]:
    device_type = torch.device(device).type
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def batched_outputs(
    model: nn.Module,
    collate_fn: Callable[[list[Any]], dict[str, torch.Tensor]],
    examples: Sequence[Any],
    *,
    batch_size: int = 64,
    precision: str = "fp32",
    drop: tuple[str, ...] = ("targets", "next_sentence_label"),
) -> Iterator[tuple[dict[str, torch.Tensor], Any]]:
    """Run ``model`` over ``examples`` in batches; yields (batch, logits) with logits in fp32."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    try:
        for start in range(0, len(examples), batch_size):
            batch = collate_fn(list(examples[start : start + batch_size]))
            inputs = {k: v.to(device) for k, v in batch.items() if k not in drop and isinstance(v, torch.Tensor)}
            with autocast(precision, device):
                logits, _ = model(**inputs)
            if isinstance(logits, tuple):
                logits = tuple(x.float() for x in logits)
            else:
                logits = logits.float()
            yield batch, logits
    finally:
        model.train(was_training)


def model_inputs(model: nn.Module) -> set[str]:
    """The keyword inputs a model's forward accepts (batches may carry more keys)."""
    import inspect

    return set(inspect.signature(model.forward).parameters) - {"self"}
