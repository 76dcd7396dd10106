"""Small pieces every task module shares: a list as a data set, running a model over
examples in batches, and reading a run's tokenizer, window and prediction inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn as nn

from gptbert.precision import autocast

GENERATION_FIELDS = ("do_sample", "temperature", "top_k", "top_p", "repetition_penalty", "num_beams",
                     "length_penalty", "seed")
"""The :class:`gptbert.generate.GenerationConfig` fields a caller may pass to predict / evaluate."""


class ListDataset(torch.utils.data.Dataset):
    """A list of examples as a map-style data set."""

    def __init__(self, items: Sequence[Any]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]


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


def plain_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens."""
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


def scalars(result: dict[str, Any]) -> dict[str, Any]:
    """The numbers and strings of an evaluation (no lists, no dicts): what ``metrics.json`` keeps."""
    return {k: v for k, v in result.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}


def floats(result: dict[str, Any]) -> dict[str, float]:
    """The float metrics of an evaluation: what ``fit`` early-stops on."""
    return {k: float(v) for k, v in result.items() if isinstance(v, float)}


def generation_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The :data:`GENERATION_FIELDS` set in ``opts``."""
    return {k: opts[k] for k in GENERATION_FIELDS if opts.get(k) is not None}


def text_of(x: Any, *keys: str) -> str:
    """A prediction input as text: a str, or the first of ``keys`` a dict has."""
    if isinstance(x, str):
        return x
    if isinstance(x, dict):
        for k in keys:
            if k in x and isinstance(x[k], str):
                return x[k]
        raise ValueError(f"input {x!r}: expected one of the keys {', '.join(keys)}")
    raise TypeError(f"input: expected a str or a dict, got {type(x).__name__}")


def run_tokenizer(run: Any) -> Any:
    """A run's tokenizer (an error naming the run when it has none)."""
    if run.tokenizer is None:
        raise ValueError(f"{run.path}: no tokenizer files (tokenizer.json, vocab.txt or vocab.json)")
    return run.tokenizer


def run_max_len(run: Any) -> int:
    """Tokens per input of a run: what it was trained with, at most its block size."""
    return min(run.task.max_len or 128, run.config.block_size)


def run_labels(run: Any) -> list[str]:
    """A labelled run's label names (``'0'``, ``'1'``, ... when it has none)."""
    return run.labels or [str(i) for i in range(run.config.num_labels)]


def is_causal_lm(config: Any) -> bool:
    """Whether a model of ``config`` generates: a GPT, or a GPT-BERT hybrid in its causal mode, with an 'lm' head."""
    return config.family in ("gpt", "hybrid") and config.head == "lm"


def nothing_to_predict(run: Any) -> ValueError:
    """The error of a run no task can predict with."""
    return ValueError(f"{run.path}: nothing to predict with a {run.config.family} model with head "
                      f"{run.config.head!r} (task {run.task.task!r})")
