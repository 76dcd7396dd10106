"""Sequence and pair classification (sentiment, intents, NLI-style pairs) for every family.

BERT classifies from its pooled [CLS], GPT from the last real token, ELMo from the
masked mean of its scalar-mixed layers; the data path is the same for all three:
:class:`ClassificationCollator` batches texts or pairs, :class:`ClassifyTask` is the task.
"""

from __future__ import annotations

import warnings

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn as nn

from gptbert.config import ModelConfig
from gptbert.data.collate import pad_chars, wants_token_types
from gptbert.data.objectives import TokenizerLike, char_ids_for_words, pad_sequences, token_texts
from gptbert.data.readers import DataError, LabelMap, TaskData, read_task_file, train_dev_split
from gptbert.tasks.base import Task, TaskOptions, TaskSplits
from gptbert.tasks.common import ListDataset, batched_outputs, run_labels, run_max_len, run_tokenizer, text_of
from gptbert.tokenizer import Tokenizer


@dataclass
class ClassifyOptions(TaskOptions):
    """Which columns of a TSV / CSV / JSONL file hold the text, the optional second text and the label."""

    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"


# ---------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------


def _unpack_classification(example: Any) -> tuple[str, str | None, Any]:
    if isinstance(example, str):
        return example, None, None
    if isinstance(example, Mapping):
        text = example.get("text", example.get("sentence", example.get("text_a")))
        pair = example.get("text_pair", example.get("text_b"))
        return text, pair, example.get("label")
    if isinstance(example, (tuple, list)):
        if len(example) == 2:
            return example[0], None, example[1]
        if len(example) == 3:
            return example[0], example[1], example[2]
    raise TypeError(f"classification example: expected str, dict or (text[, pair], label), got {example!r}")


class ClassificationCollator:
    """Sequence (pair) classification.

    Examples: ``text``, ``(text, label)``, ``(text, pair, label)`` or dicts with ``text``
    (``sentence``), optional ``text_pair`` and ``label``. Returns ``idx``,
    ``attention_mask``, ``token_type_ids`` (WordPiece tokenizers, or when
    ``return_token_type_ids``), and ``targets`` (B,) when every example has a label (long
    for integer labels, float for regression). GPT-style models read the last position:
    pass ``padding_side="left"`` so it is the last real token. ``return_char_ids`` adds
    ``char_ids`` (B, T, max_word_chars) for ELMo's character CNN.
    """

    def __init__(self, tokenizer: TokenizerLike, max_len: int, *, padding_side: Literal["right", "left"] = "right",
                 pad_to_multiple_of: int | None = None, return_token_type_ids: bool | None = None,
                 return_char_ids: bool = False, max_word_chars: int = 50) -> None:
        self.tokenizer = tokenizer
        self.max_len = int(max_len)
        self.padding_side = padding_side
        self.pad_to_multiple_of = pad_to_multiple_of
        self.token_types = wants_token_types(tokenizer, return_token_type_ids)
        self.return_char_ids = return_char_ids
        self.max_word_chars = max_word_chars

    def __call__(self, examples: Sequence[Any]) -> dict[str, torch.Tensor]:
        tok = self.tokenizer
        ids: list[list[int]] = []
        types: list[list[int]] = []
        labels: list[Any] = []
        chars: list[torch.Tensor] = []
        for ex in examples:
            text, pair, label = _unpack_classification(ex)
            enc = tok.encode(text, pair, max_length=self.max_len)
            ids.append(list(enc.ids))
            types.append(list(enc.type_ids))
            labels.append(label)
            if self.return_char_ids:
                chars.append(self._chars(text, pair, enc))
        kw: dict[str, Any] = dict(padding_side=self.padding_side, pad_to_multiple_of=self.pad_to_multiple_of)
        idx = pad_sequences(ids, tok.pad_id, **kw)  # (B, T)
        T = idx.shape[1]
        batch = {"idx": idx, "attention_mask": pad_sequences([[1] * len(s) for s in ids], 0, length=T, **kw)}
        if self.token_types:
            batch["token_type_ids"] = pad_sequences(types, 0, length=T, **kw)  # (B, T)
        if self.return_char_ids:
            batch["char_ids"] = pad_chars(chars, T, self.max_word_chars, self.padding_side)
        if labels and all(lab is not None for lab in labels):
            if all(isinstance(lab, (int, np.integer)) for lab in labels):
                batch["targets"] = torch.tensor([int(lab) for lab in labels], dtype=torch.long)  # (B,)
            elif all(isinstance(lab, (int, float, np.number)) for lab in labels):
                batch["targets"] = torch.tensor([float(lab) for lab in labels], dtype=torch.float)  # (B,)
            else:
                raise TypeError(f"labels must be numbers (map names to ids first), got {labels[:3]!r}")
        return batch

    def _chars(self, text: str, pair: str | None, enc: Any) -> torch.Tensor:
        tok = self.tokenizer
        types = list(enc.type_ids)
        second = 1 if pair is not None else None
        texts: list[str | int] = []
        for j, (tid, off, sp) in enumerate(zip(enc.ids, enc.offsets, enc.special_tokens_mask)):
            source = pair if (second is not None and types and types[j] == second) else text
            texts.extend(token_texts(source or "", [tid], [off], [sp], tok))
        return char_ids_for_words(texts, self.max_word_chars)  # (n, C)


# ---------------------------------------------------------------------------------------
# Data, predictions, scores
# ---------------------------------------------------------------------------------------


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


def read_file(path: str | Path, options: ClassifyOptions, *, skip_bad_rows: bool = False) -> TaskData:
    """A labelled (or unlabelled) file read in the columns of ``options``."""
    return read_task_file(path, text_column=options.text_column, text_pair_column=options.text_pair_column,
                          label_column=options.label_column, skip_bad_rows=skip_bad_rows)


def load_data(
    train_path: str | Path,
    dev_path: str | Path | None = None,
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
    columns = ClassifyOptions(text_column, text_pair_column, label_column)
    train = read_file(train_path, columns, skip_bad_rows=skip_bad_rows)
    if dev_path:
        dev = read_file(dev_path, columns, skip_bad_rows=skip_bad_rows)
    else:
        train, dev = train_dev_split(train, dev_fraction=dev_fraction, seed=seed)
    if max_train is not None and max_train < 1:
        raise ValueError(f"max_train={max_train}: expected a positive number of training examples")
    if max_train is not None and len(train) > max_train:
        rng = np.random.default_rng(seed)
        train = train.subset(sorted(rng.choice(len(train), size=max_train, replace=False).tolist()))
    label_map = label_map or LabelMap.from_data(train)
    if train.labels and len(set(train.labels)) < 2:
        raise DataError(f"{train_path}: every training example has the label {train.labels[0]!r}: a classifier "
                        "needs at least two classes (is --label-column the right column?)")
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

    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: expected a positive number of examples per model call")
    probs = predict_proba(model, tokenizer, examples, max_len=max_len, batch_size=batch_size, precision=precision)
    y_true = np.array([ex[2] for ex in examples])
    y_pred = probs.argmax(axis=1)
    if len(y_true) and len(set(y_true.tolist())) == 1:
        warnings.warn(f"the labelled examples hold one class only (label id {int(y_true[0])}, {len(y_true)} rows): "
                      "accuracy and F1 say nothing here (predicting that class always scores 1.0)", stacklevel=2)
    return {
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, num_labels=num_labels),
        "mcc": mcc(y_true, y_pred),
        "n": int(len(y_true)),
        "y_true": y_true.tolist(),
        "y_pred": y_pred.tolist(),
    }


def baseline_proba(baseline: Any, examples: Sequence[Any]) -> np.ndarray:
    """Probabilities (N, L) of a run that is not a network (``tfidf-lr``) for (text, pair, label) tuples."""
    texts = [ex[0] for ex in examples]
    pairs = [ex[1] or "" for ex in examples] if getattr(baseline, "pairs", False) else None
    return np.asarray(baseline.predict_proba(texts, pairs)) if texts else np.zeros((0, len(baseline.labels)))


def _baseline_evaluate(baseline: Any, examples: Sequence[tuple[str, str | None, int]], num_labels: int) -> dict[str, Any]:
    from gptbert.metrics import accuracy, macro_f1, mcc

    y_true = np.array([ex[2] for ex in examples])
    y_pred = baseline_proba(baseline, examples).argmax(axis=1)
    return {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred, num_labels=num_labels),
            "mcc": mcc(y_true, y_pred), "n": int(len(y_true)), "y_true": y_true.tolist(), "y_pred": y_pred.tolist()}


# ---------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------


class ClassifyTask(Task):
    """Label a text or a pair of texts; every family, head 'classify'; headline accuracy."""

    name = "classify"
    options_type = ClassifyOptions
    metric = "accuracy"
    heads = ("classify",)
    capability = "classify"

    def load_data(self, train_path: str | Path, dev_path: str | Path | None, options: TaskOptions, *,
                  seed: int = 0, max_train: int | None = None, skip_bad_rows: bool = False) -> TaskSplits:
        data = load_data(train_path, dev_path, **asdict(options), skip_bad_rows=skip_bad_rows, seed=seed,
                         max_train=max_train)
        texts = data.train_data.texts + (data.train_data.pairs or [])
        return TaskSplits(data.train.items, data.dev.items, texts, options, list(data.label_map.labels), data)

    def collator(self, tokenizer: Tokenizer, config: ModelConfig, max_len: int,
                 options: TaskOptions) -> ClassificationCollator:
        return make_collator(tokenizer, config, max_len)

    def evaluate(self, model: nn.Module, tokenizer: Tokenizer, examples: Sequence[Any], options: TaskOptions, *,
                 labels: Sequence[str] | None = None, max_len: int = 128, precision: str = "fp32",
                 batch_size: int = 64, **opts: Any) -> dict[str, Any]:
        return evaluate(model, tokenizer, examples, max_len=max_len, batch_size=batch_size, precision=precision,
                        num_labels=len(labels) if labels else None)

    def read_examples(self, path: str | Path, options: TaskOptions, *, labels: Sequence[str] | None = None,
                      skip_bad_rows: bool = False) -> list[Any]:
        assert isinstance(options, ClassifyOptions)
        return examples_of(read_file(path, options, skip_bad_rows=skip_bad_rows), LabelMap(list(labels or [])))

    def evaluate_file(self, run: Any, path: Path, **opts: Any) -> dict[str, Any]:
        """accuracy, macro-F1 and MCC, the label names and the confusion matrix."""
        from gptbert.metrics import confusion_matrix

        labels = run_labels(run)
        examples = self.read_examples(path, self.options_of(run), labels=labels,
                                      skip_bad_rows=bool(opts.get("skip_bad_rows", False)))[:opts.get("max_examples")]
        if run.baseline is not None:
            out = _baseline_evaluate(run.baseline, examples, len(labels))
        else:
            out = evaluate(run.model, run_tokenizer(run), examples, max_len=run_max_len(run),
                           batch_size=int(opts.get("batch_size", 32)), precision=opts.get("precision", "fp32"),
                           num_labels=len(labels))
        out["labels"] = labels
        out["confusion_matrix"] = confusion_matrix(out["y_true"], out["y_pred"], num_labels=len(labels)).tolist()
        return out

    def predict(self, run: Any, inputs: list[Any], **opts: Any) -> list[dict[str, Any]]:
        """Texts or ``{"text", "text_pair"}`` -> label, score, every label's score."""
        labels = run_labels(run)
        ex = [(text_of(x, "text", "sentence"), x.get("text_pair") if isinstance(x, dict) else None, None)
              for x in inputs]
        if run.baseline is not None:
            probs = baseline_proba(run.baseline, ex)
        else:
            probs = predict_proba(run.model, run_tokenizer(run), ex, max_len=run_max_len(run),
                                  precision=opts.get("precision", "fp32"))
        return [{"text": e[0], "label": labels[int(p.argmax())], "score": float(p.max()),
                 "scores": {lab: float(v) for lab, v in zip(labels, p)}} for e, p in zip(ex, probs)]
