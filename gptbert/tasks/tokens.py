"""Token classification (BIO tagging: NER, slot filling) for every family.

Words are tokenized one by one (:class:`TokenClassificationCollator`)
and each family reads its tags where it sees the most of the word:

* BERT and ELMo (bidirectional): the tag of a word is predicted on its *first* piece,
  the other pieces are ignored by the loss (Devlin et al. 2019, section 5.3).
* GPT (causal): the first piece has not seen the rest of the word, so every piece is
  trained with the word's tag and the prediction is read on the word's *last* piece,
  which has seen the whole word (it still cannot see the words to its right, which
  is the family's handicap on this task).

Scores are entity-level (a predicted entity counts only with the right type and both
boundaries, conlleval style) precision / recall / F1, plus token accuracy.

Inputs are CoNLL files (``word tag`` lines, blank line between sentences) or JSONL with
``tokens``/``tags`` lists (:func:`gptbert.data.readers.read_token_file`).

:func:`number_tagging` builds a *synthetic* tagging task from real text: the shared data
has no NER file, so the words of real sentences (e.g. Banking77 queries) are labelled by a
deterministic rule (currency amounts -> MONEY, other numbers -> NUM). The text is real;
the labels are a checkable rule, useful to test the pipeline end to end, not a benchmark.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn as nn

from gptbert.config import ModelConfig
from gptbert.data.collate import pad_chars, special_template, wants_token_types
from gptbert.data.objectives import (
    CHAR_BOS,
    CHAR_EOS,
    IGNORE_INDEX,
    TokenizerLike,
    char_ids_for_words,
    pad_sequences,
)
from gptbert.data.readers import DataError, TokenData, read_token_file, train_dev_split
from gptbert.tasks.base import Task, TaskOptions, TaskSplits
from gptbert.tasks.common import ListDataset, batched_outputs, run_labels, run_max_len, run_tokenizer, scalars, text_of
from gptbert.tokenizer import Tokenizer

OUTSIDE = "O"
META_KEYS = frozenset({"word_ids"})
"""Batch keys that are bookkeeping for post-processing, not model inputs."""


@dataclass
class TokensOptions(TaskOptions):
    """How a tagging run reads its tags."""

    scheme: str = "BIO"
    read_tag_on: str = "first piece"
    """'first piece' (BERT, ELMo) or 'last piece' (GPT) of each word."""

# A number with thousands/decimal separators and an optional currency symbol on either side
# stays one word; other words are runs of letters/digits (with inner apostrophes); any other
# character is a word of its own.
_WORD = re.compile(r"[$£€]?\d+(?:[.,]\d+)*[$£€]?|\w+(?:['’]\w+)*|[^\w\s]")
_CURRENCY_SYMBOL = re.compile(r"[$£€]")
_NUMBER = re.compile(r"[$£€]?\d+(?:[.,]\d+)*[$£€]?")
_CURRENCY_WORDS = frozenset({"euro", "euros", "dollar", "dollars", "pound", "pounds", "usd", "gbp", "eur",
                             "quid", "cents", "cent", "pence"})


def split_words(text: str) -> list[str]:
    """Words of a raw text: numbers (with separators and currency symbols) kept whole,
    punctuation split off. ``"I paid €10,000."`` -> ``['I', 'paid', '€10,000', '.']``."""
    return _WORD.findall(text)


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


@dataclass
class TokenTaskData:
    train: ListDataset
    """(words, tag ids) pairs."""
    dev: ListDataset
    labels: list[str]
    train_data: TokenData
    dev_data: TokenData


def label_list(data: TokenData) -> list[str]:
    """Tag names sorted with 'O' first (so that id 0 is 'outside')."""
    tags = set(data.tag_set) | {OUTSIDE}
    return [OUTSIDE] + sorted(t for t in tags if t != OUTSIDE)


def encode_tags(data: TokenData, labels: Sequence[str]) -> list[tuple[list[str], list[int]]]:
    """(words, tag ids) per sentence; an unknown tag is an error naming file and line."""
    index = {t: i for i, t in enumerate(labels)}
    out = []
    for s, (words, tags) in enumerate(zip(data.tokens, data.tags)):
        ids = []
        for w, t in enumerate(tags):
            if t not in index:
                line = None
                if data.lines:
                    jsonl = str(data.source or "").lower().endswith((".jsonl", ".json", ".ndjson"))
                    line = data.lines[s] if jsonl else data.lines[s] + w
                where = f"{data.source}:{line}" if line is not None else f"{data.source} sentence {s + 1}"
                raise DataError(f"{where}: tag {t!r} was not seen in training (known: {', '.join(labels)})")
            ids.append(index[t])
        out.append((list(words), ids))
    return out


def load_data(
    train_path: str | Path,
    dev_path: str | Path | None = None,
    *,
    skip_bad_rows: bool = False,
    dev_fraction: float = 0.1,
    seed: int = 0,
    max_train: int | None = None,
    labels: Sequence[str] | None = None,
) -> TokenTaskData:
    """Read CoNLL/JSONL train (and dev) files; without a dev file, a seeded split of train."""
    train = read_token_file(train_path, skip_bad_rows=skip_bad_rows)
    if dev_path:
        dev = read_token_file(dev_path, skip_bad_rows=skip_bad_rows)
    else:
        train, dev = train_dev_split(train, dev_fraction=dev_fraction, seed=seed)
    if max_train is not None and len(train) > max_train:
        rng = np.random.default_rng(seed)
        train = train.subset(sorted(rng.choice(len(train), size=max_train, replace=False).tolist()))
    names = list(labels) if labels is not None else label_list(train)
    for t in names:
        if t != OUTSIDE and not re.fullmatch(r"[BI]-.+", t):
            raise DataError(f"{train.source}: tag {t!r} is not a BIO tag ('O', 'B-TYPE' or 'I-TYPE')")
    return TokenTaskData(ListDataset(encode_tags(train, names)), ListDataset(encode_tags(dev, names)), names,
                         train, dev)


# ---------------------------------------------------------------------------------------
# Batches and predictions
# ---------------------------------------------------------------------------------------


def split_batch(batch: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(model_inputs, meta)``: the batch without and with only the :data:`META_KEYS`."""
    inputs = {k: v for k, v in batch.items() if k not in META_KEYS}
    meta = {k: v for k, v in batch.items() if k in META_KEYS}
    return inputs, meta


class TokenClassificationCollator:
    """Word-level tagging (NER, slot filling) with subword tokenizers.

    Examples: ``(words, tags)`` or dicts with ``words``/``tokens`` and ``tags``/``labels``
    (tag ids, one per word; tags may be omitted at inference). Each word is tokenized on its
    own (preceded by a space after the first word, as byte-level BPE expects) and the
    pieces are framed with the tokenizer's special tokens. ``targets`` (B, T) carries the
    tag on the first piece of every word and -100 on the other pieces (unless
    ``label_all_subwords``), on specials and on padding. ``word_ids`` (B, T) (word index,
    -1 elsewhere) is returned for :func:`word_predictions`; it is bookkeeping, not a
    model input (see :func:`split_batch`). Words cut off by ``max_len`` get no position.
    """

    def __init__(self, tokenizer: TokenizerLike, max_len: int, *, label_all_subwords: bool = False,
                 keep_word_ids: bool = True, padding_side: Literal["right", "left"] = "right",
                 pad_to_multiple_of: int | None = None, return_token_type_ids: bool | None = None,
                 return_char_ids: bool = False, max_word_chars: int = 50) -> None:
        self.tokenizer = tokenizer
        self.max_len = int(max_len)
        self.label_all_subwords = label_all_subwords
        self.keep_word_ids = keep_word_ids
        self.padding_side = padding_side
        self.pad_to_multiple_of = pad_to_multiple_of
        self.token_types = wants_token_types(tokenizer, return_token_type_ids)
        self.return_char_ids = return_char_ids
        self.max_word_chars = max_word_chars
        self.template = special_template(tokenizer)

    def _word_pieces(self, word: str, first: bool) -> list[int]:
        tok = self.tokenizer
        pieces = list(tok.encode(word if first else " " + word, add_special_tokens=False).ids)
        if not pieces and tok.unk_id is not None:
            pieces = [tok.unk_id]
        return pieces

    def encode_words(self, words: Sequence[str], tags: Sequence[int] | None = None
                     ) -> tuple[list[int], list[int], list[int]]:
        """``(ids, targets, word_ids)`` of one example, with special tokens."""
        tmpl = self.template
        budget = self.max_len - len(tmpl.prefix) - len(tmpl.suffix)
        ids: list[int] = list(tmpl.prefix)
        targets = [IGNORE_INDEX] * len(ids)
        word_ids = [-1] * len(ids)
        used = 0
        for w, word in enumerate(words):
            pieces = self._word_pieces(word, first=(w == 0))
            room = budget - used
            if room <= 0:
                break
            pieces = pieces[:room]
            used += len(pieces)
            tag = IGNORE_INDEX if tags is None else int(tags[w])
            for k, p in enumerate(pieces):
                ids.append(p)
                targets.append(tag if (k == 0 or self.label_all_subwords) else IGNORE_INDEX)
                word_ids.append(w)
        ids.extend(tmpl.suffix)
        targets.extend([IGNORE_INDEX] * len(tmpl.suffix))
        word_ids.extend([-1] * len(tmpl.suffix))
        return ids, targets, word_ids

    def __call__(self, examples: Sequence[Any]) -> dict[str, torch.Tensor]:
        tok = self.tokenizer
        rows = []
        chars: list[torch.Tensor] = []
        has_tags = True
        for ex in examples:
            if isinstance(ex, Mapping):
                words = ex.get("words", ex.get("tokens"))
                tags = ex.get("tags", ex.get("labels"))
            else:
                words, tags = (ex[0], ex[1]) if len(ex) == 2 and not isinstance(ex[0], str) else (ex, None)
            if tags is not None and len(tags) != len(words):
                raise ValueError(f"{len(words)} words but {len(tags)} tags")
            has_tags &= tags is not None
            row = self.encode_words(list(words), tags)
            rows.append(row)
            if self.return_char_ids:
                n_prefix = len(self.template.prefix)
                texts: list[str | int] = [list(words)[w] if w >= 0 else (CHAR_BOS if p < n_prefix else CHAR_EOS)
                                          for p, w in enumerate(row[2])]
                chars.append(char_ids_for_words(texts, self.max_word_chars))
        kw: dict[str, Any] = dict(padding_side=self.padding_side, pad_to_multiple_of=self.pad_to_multiple_of)
        idx = pad_sequences([r[0] for r in rows], tok.pad_id, **kw)  # (B, T)
        T = idx.shape[1]
        batch = {"idx": idx,
                 "attention_mask": pad_sequences([[1] * len(r[0]) for r in rows], 0, length=T, **kw)}  # (B, T)
        if self.token_types:
            batch["token_type_ids"] = torch.full_like(idx, self.template.type_a)  # (B, T)
        if has_tags:
            batch["targets"] = pad_sequences([r[1] for r in rows], IGNORE_INDEX, length=T, **kw)  # (B, T)
        if self.keep_word_ids:
            batch["word_ids"] = pad_sequences([r[2] for r in rows], -1, length=T, **kw)  # (B, T)
        if self.return_char_ids:
            batch["char_ids"] = pad_chars(chars, T, self.max_word_chars, self.padding_side)
        return batch


def make_collator(tokenizer: Tokenizer, config: ModelConfig, max_len: int, *,
                  keep_word_ids: bool = False) -> TokenClassificationCollator:
    """The family's collator: GPT labels every piece of a word, the others only the first."""
    if max_len > config.block_size:
        raise ValueError(f"max_len {max_len} exceeds the model's block_size {config.block_size}")
    return TokenClassificationCollator(
        tokenizer, max_len,
        label_all_subwords=config.family == "gpt",
        keep_word_ids=keep_word_ids,
        return_token_type_ids=config.family == "bert" and bool(config.type_vocab_size),
        return_char_ids=config.family == "elmo" and config.use_char_cnn,
        max_word_chars=config.max_word_chars,
    )


def word_predictions(pred: torch.Tensor, word_ids: torch.Tensor, n_words: Sequence[int], *,
                     last_piece: bool = False, fill: int = 0) -> list[list[int]]:
    """Per-word tag ids from per-token ones: a word's first (or ``last_piece``) piece decides.

    ``pred`` (B, T) (argmax over tags) and ``word_ids`` (B, T) from
    :class:`TokenClassificationCollator`; each row gets ``n_words`` entries, and words whose
    pieces were cut off by ``max_len`` get ``fill``.
    """
    out: list[list[int]] = []
    for p_row, w_row, n in zip(pred.tolist(), word_ids.tolist(), n_words):
        chosen: dict[int, int] = {}
        for p, w in zip(p_row, w_row):
            if w >= 0 and (last_piece or w not in chosen):
                chosen[w] = int(p)
        out.append([chosen.get(w, fill) for w in range(n)])
    return out


def _max_len(model: nn.Module, max_len: int | None) -> int:
    block = model.config.block_size  # type: ignore[union-attr]
    return min(block, 512) if max_len is None else min(max_len, block)


def predict_tag_ids(
    model: nn.Module, tokenizer: Tokenizer, word_lists: Sequence[Sequence[str]], *, max_len: int | None = None,
    batch_size: int = 32, precision: str = "fp32",
) -> list[list[int]]:
    """Tag ids, one per word, for lists of words (model with a 'tokens' head)."""
    config: ModelConfig = model.config  # type: ignore[assignment]
    if config.head != "tokens":
        raise ValueError(f"token classification needs a model with a 'tokens' head, this one has {config.head!r}")
    collate = make_collator(tokenizer, config, _max_len(model, max_len), keep_word_ids=True)
    examples = [list(ws) for ws in word_lists]
    for i, ws in enumerate(examples):
        if not ws:
            raise ValueError(f"text {i} has no words")
    out: list[list[int]] = []
    start = 0
    for batch, logits in batched_outputs(model, collate, examples, batch_size=batch_size, precision=precision,
                                         drop=("targets", "word_ids")):
        n = batch["idx"].size(0)
        pred = logits.argmax(-1)  # (B, T)
        out.extend(word_predictions(pred.cpu(), batch["word_ids"], [len(w) for w in examples[start:start + n]],
                                    last_piece=config.family == "gpt"))
        start += n
    return out


def tag(model: nn.Module, tokenizer: Tokenizer, texts_or_word_lists: Sequence[str] | Sequence[Sequence[str]],
        labels: Sequence[str], *, max_len: int | None = None, batch_size: int = 32,
        precision: str = "fp32") -> list[list[tuple[str, str]]]:
    """(word, tag) pairs per text. Raw texts are split with :func:`split_words`."""
    if isinstance(texts_or_word_lists, str):
        raise TypeError("tag() expects a list of texts or of word lists, got a single str")
    word_lists = [split_words(x) if isinstance(x, str) else list(x) for x in texts_or_word_lists]
    L = model.config.num_labels  # type: ignore[union-attr]
    if len(labels) != L:
        raise ValueError(f"{len(labels)} label names for a model with {L} tags")
    empty = [i for i, ws in enumerate(word_lists) if not ws]
    keep = [i for i in range(len(word_lists)) if i not in set(empty)]
    ids = predict_tag_ids(model, tokenizer, [word_lists[i] for i in keep], max_len=max_len,
                          batch_size=batch_size, precision=precision) if keep else []
    out: list[list[tuple[str, str]]] = [[] for _ in word_lists]
    for i, row in zip(keep, ids):
        out[i] = [(w, labels[t]) for w, t in zip(word_lists[i], row)]
    return out


def entities(pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Entities of one tagged sentence: ``{"type", "text", "start", "end"}`` (word indices, end exclusive)."""
    from gptbert.metrics import extract_entities

    words = [w for w, _ in pairs]
    return [{"type": k, "text": " ".join(words[s:e]), "start": s, "end": e}
            for k, s, e in extract_entities([t for _, t in pairs])]


# ---------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------


def per_type_scores(true: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, dict[str, float]]:
    """Entity precision / recall / F1 / support per entity type (exact type and boundaries)."""
    from gptbert.metrics import extract_entities

    gold: dict[str, set] = {}
    found: dict[str, set] = {}
    for s, (t, p) in enumerate(zip(true, pred)):
        for k, a, b in extract_entities(list(t)):
            gold.setdefault(k, set()).add((s, a, b))
        for k, a, b in extract_entities(list(p)):
            found.setdefault(k, set()).add((s, a, b))
    out = {}
    for k in sorted(set(gold) | set(found)):
        g, f = gold.get(k, set()), found.get(k, set())
        hit = len(g & f)
        prec = hit / len(f) if f else 0.0
        rec = hit / len(g) if g else 0.0
        out[k] = {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
                  "support": len(g)}
    return out


def evaluate(
    model: nn.Module, tokenizer: Tokenizer, examples: Sequence[tuple[Sequence[str], Sequence[int]]],
    labels: Sequence[str], *, max_len: int | None = None, batch_size: int = 32, precision: str = "fp32",
) -> dict[str, Any]:
    """Entity-level precision / recall / F1 (micro, conlleval style), token accuracy, per-type scores."""
    from gptbert.metrics import entity_f1

    if not examples:
        raise ValueError("no examples to evaluate")
    pred_ids = predict_tag_ids(model, tokenizer, [ex[0] for ex in examples], max_len=max_len,
                               batch_size=batch_size, precision=precision)
    true = [[labels[i] for i in ex[1]] for ex in examples]
    pred = [[labels[i] for i in row] for row in pred_ids]
    scores = entity_f1(true, pred)
    flat_t = [t for row in true for t in row]
    flat_p = [p for row in pred for p in row]
    return {
        "precision": scores["precision"],
        "recall": scores["recall"],
        "f1": scores["f1"],
        "token_accuracy": float(np.mean([a == b for a, b in zip(flat_t, flat_p)])),
        "n": len(examples),
        "n_entities": sum(len(_ents(t)) for t in true),
        "per_type": per_type_scores(true, pred),
        "predictions": pred,
    }


def _ents(tags: Sequence[str]) -> list:
    from gptbert.metrics import extract_entities

    return extract_entities(list(tags))


class TokensTask(Task):
    """BIO tagging: head 'tokens'; BERT / ELMo read a word's tag on its first piece, GPT on its last."""

    name = "tokens"
    options_type = TokensOptions
    metric = "f1"
    metric_name = "entity_f1"
    heads = ("tokens",)
    capability = "tag"

    def load_data(self, train_path: str | Path, dev_path: str | Path | None, options: TaskOptions, *,
                  seed: int = 0, max_train: int | None = None, skip_bad_rows: bool = False) -> TaskSplits:
        data = load_data(train_path, dev_path, skip_bad_rows=skip_bad_rows, seed=seed, max_train=max_train)
        texts = [" ".join(w) for w, _ in data.train.items]
        return TaskSplits(data.train.items, data.dev.items, texts, options, data.labels, data)

    def collator(self, tokenizer: Tokenizer, config: ModelConfig, max_len: int,
                 options: TaskOptions) -> TokenClassificationCollator:
        return make_collator(tokenizer, config, max_len)

    def fitting(self, model: nn.Module, tokenizer: Tokenizer, data: TaskSplits, *, max_len: int,
                precision: str = "fp32", seed: int = 0) -> Any:
        fitting = super().fitting(model, tokenizer, data, max_len=max_len, precision=precision, seed=seed)
        gpt = model.config.family == "gpt"  # type: ignore[union-attr]
        fitting.options = replace(data.options, scheme="BIO", read_tag_on="last piece" if gpt else "first piece")
        return fitting

    def run_metrics(self, final: dict[str, Any]) -> dict[str, Any]:
        return {"dev": scalars(final), "per_type": final["per_type"]}

    def evaluate(self, model: nn.Module, tokenizer: Tokenizer, examples: Sequence[Any], options: TaskOptions, *,
                 labels: Sequence[str] | None = None, max_len: int = 128, precision: str = "fp32",
                 batch_size: int = 32, **opts: Any) -> dict[str, Any]:
        return evaluate(model, tokenizer, examples, list(labels or []), max_len=max_len, batch_size=batch_size,
                        precision=precision)

    def read_examples(self, path: str | Path, options: TaskOptions, *, labels: Sequence[str] | None = None,
                      skip_bad_rows: bool = False) -> list[Any]:
        return encode_tags(read_token_file(path, skip_bad_rows=skip_bad_rows), list(labels or []))

    def evaluate_file(self, run: Any, path: Path, **opts: Any) -> dict[str, Any]:
        """Entity P / R / F1 with each prediction as its sentence's (word, tag) pairs."""
        labels = list(run.labels or [])
        examples = self.read_examples(path, self.options_of(run), labels=labels,
                                      skip_bad_rows=bool(opts.get("skip_bad_rows", False)))[:opts.get("max_examples")]
        out = evaluate(run.model, run_tokenizer(run), examples, labels, max_len=run_max_len(run),
                       batch_size=int(opts.get("batch_size", 32)), precision=opts.get("precision", "fp32"))
        out["predictions"] = [[list(p) for p in zip(ex[0], pred)] for ex, pred in zip(examples, out["predictions"])]
        return out

    def bootstrap_pairs(self, result: dict[str, Any], data: TaskSplits) -> tuple[list[Any], list[Any]] | None:
        preds = result.get("predictions")
        if preds is None:
            return None
        gold = [[data.labels[i] for i in tags] for _, tags in data.dev]  # type: ignore[index]
        return gold[:len(preds)], preds

    def predict(self, run: Any, inputs: list[Any], **opts: Any) -> list[dict[str, Any]]:
        """Texts or word lists -> (word, tag) pairs and entities."""
        items = [x if isinstance(x, (list, tuple)) else text_of(x, "text", "tokens") for x in inputs]
        tagged = tag(run.model, run_tokenizer(run), items, run_labels(run), max_len=run_max_len(run),
                     precision=opts.get("precision", "fp32"))
        return [{"text": x if isinstance(x, str) else " ".join(x), "tags": [list(p) for p in t],
                 "entities": entities(t)} for x, t in zip(items, tagged)]

    def read_inputs(self, path: Path, columns: Mapping[str, str | None] | None = None,
                    options: TaskOptions | None = None) -> list[Any]:
        if path.suffix.lower() in (".conll", ".bio", ".iob"):
            return [list(ws) for ws in read_token_file(path).tokens]
        return super().read_inputs(path, columns, options)


# ---------------------------------------------------------------------------------------
# A synthetic tagging task on real text
# ---------------------------------------------------------------------------------------


def number_tags(words: Sequence[str]) -> list[str]:
    """The rule behind :func:`number_tagging`, word by word.

    * MONEY: a number written with a currency symbol (``$1``, ``1£``, ``€10,000``), a
      currency symbol followed by a number (``£ 20``), or a number followed by a currency
      word (``10 pounds``, ``500 dollar``): ``B-MONEY`` on the first word, ``I-MONEY`` on
      the rest.
    * NUM: any other word made of digits (``30``, ``1.5``): ``B-NUM``.
    * everything else: ``O``.
    """
    n = len(words)
    tags = [OUTSIDE] * n
    i = 0
    while i < n:
        w = words[i]
        nxt = words[i + 1].lower() if i + 1 < n else ""
        if _NUMBER.fullmatch(w):
            if _CURRENCY_SYMBOL.search(w):
                tags[i] = "B-MONEY"
                if nxt in _CURRENCY_WORDS:
                    tags[i + 1] = "I-MONEY"
                    i += 1
            elif nxt in _CURRENCY_WORDS:
                tags[i], tags[i + 1] = "B-MONEY", "I-MONEY"
                i += 1
            else:
                tags[i] = "B-NUM"
        elif w in ("$", "£", "€") and i + 1 < n and _NUMBER.fullmatch(words[i + 1]):
            tags[i], tags[i + 1] = "B-MONEY", "I-MONEY"
            i += 1
        i += 1
    return tags


def number_tagging(texts: Sequence[str], *, with_numbers_only: bool = False) -> TokenData:
    """A synthetic BIO tagging data set from real sentences (see :func:`number_tags`).

    Each text is split with :func:`split_words` and its words labelled by the rule. With
    ``with_numbers_only`` only sentences containing at least one entity are kept.
    """
    tokens, tags = [], []
    for t in texts:
        words = split_words(t)
        if not words:
            continue
        tg = number_tags(words)
        if with_numbers_only and all(x == OUTSIDE for x in tg):
            continue
        tokens.append(words)
        tags.append(tg)
    return TokenData(tokens, tags, source="number_tagging")


def write_token_file(data: TokenData, path: str | Path) -> Path:
    """Write sentences as CoNLL (``word tag`` lines) or, for a ``.jsonl`` path, JSONL."""
    p = Path(path)
    with p.open("w", encoding="utf-8") as f:
        if p.suffix.lower() in (".jsonl", ".json"):
            for words, tg in zip(data.tokens, data.tags):
                f.write(json.dumps({"tokens": list(words), "tags": list(tg)}, ensure_ascii=False) + "\n")
        else:
            for words, tg in zip(data.tokens, data.tags):
                for w, t in zip(words, tg):
                    f.write(f"{w} {t}\n")
                f.write("\n")
    return p
