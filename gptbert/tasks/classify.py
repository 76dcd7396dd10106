"""Sequence and pair classification (sentiment, intents, NLI-style pairs) for every family.

BERT classifies from its pooled [CLS], GPT from the last real token, ELMo from the
masked mean of its scalar-mixed layers; the data path is the same for all three.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from gptbert.config import ModelConfig
from gptbert.data.collate import ClassificationCollator
from gptbert.data.readers import LabelMap, TaskData, read_task_file, train_dev_split
from gptbert.tasks import ListDataset, batched_outputs
from gptbert.tokenizer import Tokenizer


@dataclass
class ClassifyData:
    train: ListDataset
    dev: ListDataset
    label_map: LabelMap
    train_data: TaskData
    dev_data: TaskData


def examples_of(data: TaskData, label_map: LabelMap | None) -> list[tuple[str, str | None, int | None]]:
    """(text, pair, label id) tuples; unknown labels are an error naming file and line."""
    pairs = data.pairs or [None] * len(data)
    if label_map is None or data.labels is None:
        return [(t, p, None) for t, p in zip(data.texts, pairs)]
    ids = [label_map.encode(lab, where=data.where(i)) for i, lab in enumerate(data.labels)]
    return list(zip(data.texts, pairs, ids))


def load_data(
    train_path: str,
    dev_path: str | None = None,
    *,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    skip_bad_rows: bool = False,
    dev_fraction: float = 0.1,
    seed: int = 0,
    label_map: LabelMap | None = None,
    max_train: int | None = None,
) -> ClassifyData:
    """Read train (and dev) files; without a dev file, a seeded split of train."""
    kw: dict[str, Any] = dict(text_column=text_column, text_pair_column=text_pair_column,
                              label_column=label_column, skip_bad_rows=skip_bad_rows)
    train = read_task_file(train_path, **kw)
    if dev_path:
        dev = read_task_file(dev_path, **kw)
    else:
        train, dev = train_dev_split(train, dev_fraction=dev_fraction, seed=seed)
    if max_train is not None and len(train) > max_train:
        rng = np.random.default_rng(seed)
        train = train.subset(sorted(rng.choice(len(train), size=max_train, replace=False).tolist()))
    label_map = label_map or LabelMap.from_data(train)
    return ClassifyData(ListDataset(examples_of(train, label_map)), ListDataset(examples_of(dev, label_map)),
                        label_map, train, dev)


def make_collator(tokenizer: Tokenizer, config: ModelConfig, max_len: int) -> ClassificationCollator:
    if max_len > config.block_size:
        raise ValueError(f"max_len {max_len} exceeds the model's block_size {config.block_size}")
    return ClassificationCollator(
        tokenizer, max_len,
        return_char_ids=config.family == "elmo" and config.use_char_cnn,
        max_word_chars=config.max_word_chars,
        return_token_type_ids=config.family == "bert" and bool(config.type_vocab_size),
    )


def predict_proba(
    model: nn.Module, tokenizer: Tokenizer, examples: Sequence[Any], *, max_len: int = 128,
    batch_size: int = 64, precision: str = "fp32",
) -> np.ndarray:
    """Class probabilities (N, L) for (text, pair, label) tuples or plain texts."""
    collate = make_collator(tokenizer, model.config, max_len)  # type: ignore[arg-type]
    probs = [torch.softmax(logits, dim=-1).numpy()
             for _, logits in batched_outputs(model, collate, examples, batch_size=batch_size, precision=precision)]
    L = model.config.num_labels  # type: ignore[union-attr]
    return np.concatenate(probs) if probs else np.zeros((0, L), dtype=np.float32)


def evaluate(
    model: nn.Module, tokenizer: Tokenizer, examples: Sequence[tuple[str, str | None, int]], *,
    max_len: int = 128, batch_size: int = 64, precision: str = "fp32", num_labels: int | None = None,
) -> dict[str, Any]:
    """accuracy, macro-F1 and MCC on labelled examples (plus predictions for reports)."""
    from gptbert.metrics import accuracy, macro_f1, mcc

    probs = predict_proba(model, tokenizer, examples, max_len=max_len, batch_size=batch_size, precision=precision)
    y_true = np.array([ex[2] for ex in examples])
    y_pred = probs.argmax(axis=1)
    return {
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, num_labels=num_labels),
        "mcc": mcc(y_true, y_pred),
        "n": int(len(y_true)),
        "y_true": y_true.tolist(),
        "y_pred": y_pred.tolist(),
    }
