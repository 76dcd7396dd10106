"""Token classification (BIO tagging: NER, slot filling) for every family.

Words are tokenized one by one (:class:`gptbert.data.collate.TokenClassificationCollator`)
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from gptbert.config import ModelConfig
from gptbert.data.collate import TokenClassificationCollator
from gptbert.data.readers import DataError, TokenData, read_token_file, train_dev_split
from gptbert.tasks import ListDataset, batched_outputs
from gptbert.tokenizer import Tokenizer

OUTSIDE = "O"

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
                     last_piece: bool, fill: int = 0) -> list[list[int]]:
    """Per-word tag ids from per-token ones (B, T): a word's first or last piece decides.

    Words whose pieces were cut off by ``max_len`` get ``fill``.
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
