"""Fine-tuning collators: task examples in, batch dicts of tensors out.

Every collator takes a tokenizer (:class:`gptbert.tokenizer.Tokenizer`) and ``max_len``
and returns a dict called as ``model(**batch)``: ``idx`` (B, T), ``attention_mask``
(B, T), ``token_type_ids`` (B, T) for BERT-style (WordPiece) vocabularies, ``targets``
(task-specific shape, ignore index -100).

Some collators add bookkeeping that is *not* a model input (``word_ids`` for token
classification); :func:`split_batch` separates the two.

* :class:`ClassificationCollator`: single texts or pairs -> ``targets`` (B,).
* :class:`TokenClassificationCollator`: words + tag ids -> ``targets`` (B, T), first piece
  of each word labelled.
* Extractive QA: :func:`prepare_qa_features` (doc-stride windows), :class:`QACollator`
  (``targets`` (B, 2) = [start, end]), :func:`postprocess_qa` / :func:`qa_nbest`.
* :class:`ConditionalLMCollator`: prompt -> target generation for GPT, loss on the target only.
"""

from __future__ import annotations

import json
import re
import string
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch

from gptbert.data.objectives import (
    CHAR_BOS,
    CHAR_EOS,
    IGNORE_INDEX,
    TokenizerLike,
    char_ids_for_words,
    eos_or_sep,
    pad_sequences,
    token_texts,
)

META_KEYS = frozenset({"word_ids"})
"""Batch keys that are bookkeeping for post-processing, not model inputs."""


def split_batch(batch: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(model_inputs, meta)``: the batch without and with only the :data:`META_KEYS`."""
    inputs = {k: v for k, v in batch.items() if k not in META_KEYS}
    meta = {k: v for k, v in batch.items() if k in META_KEYS}
    return inputs, meta


# ---------------------------------------------------------------------------------------
# Special-token templates (derived from the tokenizer, not hard-coded)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecialTemplate:
    """Where a tokenizer puts its special tokens: ``prefix A suffix`` for one text,
    ``prefix A middle B pair_suffix`` for a pair; type ids of each part."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    middle: tuple[int, ...]
    pair_suffix: tuple[int, ...]
    type_a: int = 0
    type_b: int = 1


_TEMPLATES: weakref.WeakKeyDictionary[Any, SpecialTemplate] = weakref.WeakKeyDictionary()
"""Probed templates by tokenizer object. Weak keys, not ``id()``: an id is reused once its
object is collected, and a new tokenizer must never get a dead one's special tokens."""


def _find(haystack: Sequence[int], needle: Sequence[int], start: int = 0) -> int:
    n = len(needle)
    for i in range(start, len(haystack) - n + 1):
        if list(haystack[i: i + n]) == list(needle):
            return i
    raise ValueError("probe text not found in its own encoding with special tokens")


def special_template(tokenizer: TokenizerLike) -> SpecialTemplate:
    """Probe the tokenizer once: which special ids surround one text and a pair of texts."""
    try:
        return _TEMPLATES[tokenizer]
    except (KeyError, TypeError):  # TypeError: not weak-referenceable, probed every time
        pass
    a_txt, b_txt = "hello", "world"
    a = list(tokenizer.encode(a_txt, add_special_tokens=False).ids)
    b = list(tokenizer.encode(b_txt, add_special_tokens=False).ids)
    single = list(tokenizer.encode(a_txt).ids)
    i = _find(single, a)
    pair_enc = tokenizer.encode(a_txt, b_txt)
    pair = list(pair_enc.ids)
    ia = _find(pair, a)
    ib = _find(pair, b, ia + len(a))
    types = list(pair_enc.type_ids)
    tmpl = SpecialTemplate(
        prefix=tuple(single[:i]), suffix=tuple(single[i + len(a):]),
        middle=tuple(pair[ia + len(a): ib]), pair_suffix=tuple(pair[ib + len(b):]),
        type_a=int(types[ia]) if types else 0, type_b=int(types[ib]) if types else 0,
    )
    try:
        _TEMPLATES[tokenizer] = tmpl
    except TypeError:
        pass
    return tmpl


def _wants_token_types(tokenizer: TokenizerLike, flag: bool | None) -> bool:
    return getattr(tokenizer, "kind", "wordpiece") == "wordpiece" if flag is None else bool(flag)


# ---------------------------------------------------------------------------------------
# Sequence classification
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
        self.token_types = _wants_token_types(tokenizer, return_token_type_ids)
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
            batch["char_ids"] = _pad_chars(chars, T, self.max_word_chars, self.padding_side)
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


def _pad_chars(chars: Sequence[torch.Tensor], T: int, C: int, side: str) -> torch.Tensor:
    out = torch.zeros(len(chars), T, C, dtype=torch.long)  # (B, T, C)
    for i, c in enumerate(chars):
        n = c.shape[0]
        if side == "right":
            out[i, :n] = c
        else:
            out[i, T - n:] = c
    return out


# ---------------------------------------------------------------------------------------
# Token classification
# ---------------------------------------------------------------------------------------


class TokenClassificationCollator:
    """Word-level tagging (NER, slot filling) with subword tokenizers.

    Examples: ``(words, tags)`` or dicts with ``words``/``tokens`` and ``tags``/``labels``
    (tag ids, one per word; tags may be omitted at inference). Each word is tokenized on its
    own (preceded by a space after the first word, as byte-level BPE expects) and the
    pieces are framed with the tokenizer's special tokens. ``targets`` (B, T) carries the
    tag on the first piece of every word and -100 on the other pieces (unless
    ``label_all_subwords``), on specials and on padding. ``word_ids`` (B, T) (word index,
    -1 elsewhere) is returned for :func:`align_word_predictions`; it is bookkeeping, not a
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
        self.token_types = _wants_token_types(tokenizer, return_token_type_ids)
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
            batch["char_ids"] = _pad_chars(chars, T, self.max_word_chars, self.padding_side)
        return batch


def align_word_predictions(predictions: torch.Tensor, word_ids: torch.Tensor,
                           n_words: Sequence[int] | None = None, *, fill: int = 0) -> list[list[int]]:
    """Per-word predictions from per-token ones: the prediction at each word's first piece.

    ``predictions`` (B, T) (argmax over tags) and ``word_ids`` (B, T) from
    :class:`TokenClassificationCollator`. With ``n_words``, each row has exactly that many
    entries; words that lost their pieces to truncation get ``fill``.
    """
    preds = predictions.tolist()
    wids = word_ids.tolist()
    out: list[list[int]] = []
    for b, (p_row, w_row) in enumerate(zip(preds, wids)):
        first: dict[int, int] = {}
        for p, w in zip(p_row, w_row):
            if w >= 0 and w not in first:
                first[w] = int(p)
        n = n_words[b] if n_words is not None else (max(first) + 1 if first else 0)
        out.append([first.get(w, fill) for w in range(n)])
    return out


# ---------------------------------------------------------------------------------------
# Extractive question answering
# ---------------------------------------------------------------------------------------


def squad_examples(source: str | Path | Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flatten SQuAD v1.1 JSON (a path or the parsed object) into one dict per question:
    ``id``, ``question``, ``context``, ``answers`` = list of ``{"text", "answer_start"}``."""
    data = json.loads(Path(source).read_text(encoding="utf-8")) if not isinstance(source, Mapping) else source
    out: list[dict[str, Any]] = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                out.append({"id": str(qa["id"]), "question": qa["question"], "context": para["context"],
                            "answers": list(qa.get("answers", []))})
    return out


def _field(example: Any, key: str) -> Any:
    """``example[key]`` for dicts, ``example.key`` for objects such as ``readers.QAExample``."""
    return example[key] if isinstance(example, Mapping) else getattr(example, key)


def _answers(example: Any) -> list[tuple[str, int | None]]:
    answers = (example.get("answers") if isinstance(example, Mapping) else getattr(example, "answers", None)) or []
    if isinstance(answers, Mapping):  # {"text": [...], "answer_start": [...]}
        texts = list(answers.get("text", []))
        starts = list(answers.get("answer_start", [None] * len(texts)))
        return list(zip(texts, starts))
    return [(a["text"], a.get("answer_start")) for a in answers]


def _wordchar(ch: str) -> bool:
    # Letters and digits of scripts written with spaces; CJK characters each stand alone.
    return ch.isalnum() and ord(ch) < 0x2E80


def _word_aligned(context: str, start: int, end: int) -> bool:
    """The span neither begins nor ends inside a word."""
    inside_start = start > 0 and _wordchar(context[start - 1]) and _wordchar(context[start])
    inside_end = end < len(context) and _wordchar(context[end - 1]) and _wordchar(context[end])
    return not (inside_start or inside_end)


def locate_answer(context: str, text: str, answer_start: int | None) -> tuple[int, int] | None:
    """Character span ``[start, end)`` of an answer in its context, or None if absent.

    Real files have answers whose ``answer_start`` is missing or off, whose case or spacing
    differs from the context, or that occur only inside longer words ("term" at the
    ``answer_start`` pointing into "intermediaries", "8 percent" inside "28 percent").
    The given offset is used when the text is there and the span is word-aligned;
    otherwise the word-aligned occurrence nearest to it (the first one without it) of the
    text, then of the text ignoring case, then ignoring case and runs of whitespace.
    A match inside a word is no answer: token-level spans cannot express it.
    """
    stripped = text.strip()
    if not stripped:
        return None
    if answer_start is not None:
        lead = len(text) - len(text.lstrip())
        s = int(answer_start) + lead
        if 0 <= s and context[s: s + len(stripped)] == stripped and _word_aligned(context, s, s + len(stripped)):
            return s, s + len(stripped)
    anchor = int(answer_start) if answer_start is not None else 0
    patterns = [re.escape(stripped), "(?i)" + re.escape(stripped),
                "(?i)" + r"\s+".join(re.escape(w) for w in stripped.split())]
    for pat in patterns:
        aligned = [(m.start(), m.end()) for m in re.finditer(pat, context) if _word_aligned(context, m.start(), m.end())]
        if aligned:
            return min(aligned, key=lambda sp: (abs(sp[0] - anchor), sp[0]))
    return None


class QAFeature:
    """One window of an extractive-QA example: ``prefix Q middle C_window suffix``.

    ``idx``, ``token_type_ids``, ``offset_mapping`` are built on access from arrays shared
    by every window of the same context, so thousands of windows over a long document
    cost little memory. ``targets`` = (start, end) token positions of the answer, or
    (0, 0) (the [CLS] position) when the window does not contain it.
    ``offset_mapping[p]`` is the character span in ``context`` of position ``p``, or None
    outside the context window.
    """

    __slots__ = ("example_id", "window", "context", "question_ids", "targets", "answer_text",
                 "context_start", "_ctx_ids", "_ctx_offsets", "_lo", "_hi", "_tmpl")

    def __init__(self, example_id: str, window: int, context: str, question_ids: list[int],
                 ctx_ids: np.ndarray, ctx_offsets: np.ndarray, lo: int, hi: int,
                 tmpl: SpecialTemplate, targets: tuple[int, int], answer_text: str | None) -> None:
        self.example_id = example_id
        self.window = window
        self.context = context
        self.question_ids = question_ids
        self._ctx_ids, self._ctx_offsets = ctx_ids, ctx_offsets
        self._lo, self._hi = lo, hi
        self._tmpl = tmpl
        self.context_start = len(tmpl.prefix) + len(question_ids) + len(tmpl.middle)
        """Sequence position of the window's first context token."""
        self.targets = targets
        self.answer_text = answer_text
        """The located gold answer (as written in the context), or None if unanswerable."""

    @property
    def num_context_tokens(self) -> int:
        return self._hi - self._lo

    def __len__(self) -> int:
        return self.context_start + self.num_context_tokens + len(self._tmpl.pair_suffix)

    @property
    def idx(self) -> list[int]:
        t = self._tmpl
        return [*t.prefix, *self.question_ids, *t.middle, *self._ctx_ids[self._lo: self._hi].tolist(),
                *t.pair_suffix]

    @property
    def token_type_ids(self) -> list[int]:
        t = self._tmpl
        return [t.type_a] * self.context_start + [t.type_b] * (self.num_context_tokens + len(t.pair_suffix))

    @property
    def attention_mask(self) -> list[int]:
        return [1] * len(self)

    @property
    def context_span(self) -> tuple[int, int]:
        """Character span in ``context`` covered by this window's context tokens."""
        return int(self._ctx_offsets[self._lo, 0]), int(self._ctx_offsets[self._hi - 1, 1])

    def char_span(self, position: int) -> tuple[int, int] | None:
        """Character span in ``context`` of sequence position ``position`` (None outside the context)."""
        k = position - self.context_start
        if 0 <= k < self.num_context_tokens:
            s, e = self._ctx_offsets[self._lo + k]
            return int(s), int(e)
        return None

    @property
    def offset_mapping(self) -> list[tuple[int, int] | None]:
        return [self.char_span(p) for p in range(len(self))]

    def span_text(self, start: int, end: int) -> str:
        """Context text covered by token positions ``start..end`` (inclusive)."""
        s, e = self.char_span(start), self.char_span(end)
        if s is None or e is None:
            return ""
        return self.context[s[0]: e[1]]

    def __repr__(self) -> str:
        return (f"QAFeature(example_id={self.example_id!r}, window={self.window}, len={len(self)}, "
                f"targets={self.targets})")


def prepare_qa_features(
    examples: Sequence[Any],
    tokenizer: TokenizerLike,
    max_len: int = 384,
    doc_stride: int = 128,
    max_query_len: int = 64,
) -> list[QAFeature]:
    """Cut each (question, context) into windows of at most ``max_len`` tokens.

    ``examples``: :class:`gptbert.data.readers.QAExample` objects (``read_squad``) or dicts
    with ``id``, ``question``, ``context`` and ``answers`` (a list of ``{"text",
    "answer_start"}`` or ``{"text": [...], "answer_start": [...]}``; see :func:`squad_examples`). The question is cut to ``max_query_len`` tokens; consecutive
    context windows start ``doc_stride`` tokens apart (BERT's convention: the step, not
    the overlap). The first locatable answer (:func:`locate_answer`) gives ``targets``.
    Each context is tokenized once, however many questions share it.
    """
    if doc_stride < 1:
        raise ValueError(f"doc_stride must be >= 1, got {doc_stride}")
    tmpl = special_template(tokenizer)
    contexts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    features: list[QAFeature] = []
    for ex in examples:
        context: str = _field(ex, "context")
        if context not in contexts:
            enc = tokenizer.encode(context, add_special_tokens=False)
            contexts[context] = (np.asarray(enc.ids, dtype=np.int64),
                                 np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2))
        ctx_ids, ctx_offsets = contexts[context]
        q_ids = list(tokenizer.encode(_field(ex, "question"), add_special_tokens=False).ids)[:max_query_len]
        room = max_len - len(tmpl.prefix) - len(q_ids) - len(tmpl.middle) - len(tmpl.pair_suffix)
        if room < 1:
            raise ValueError(f"max_len={max_len} leaves no room for the context after a {len(q_ids)}-token question")

        span: tuple[int, int] | None = None
        gold_text: str | None = None
        for text, start in _answers(ex):
            chars = locate_answer(context, text, start)
            if chars is not None and len(ctx_ids):
                tok_start = int(np.searchsorted(ctx_offsets[:, 1], chars[0], side="right"))
                tok_end = int(np.searchsorted(ctx_offsets[:, 0], chars[1], side="left")) - 1
                if tok_start <= tok_end < len(ctx_ids):
                    span, gold_text = (tok_start, tok_end), context[chars[0]: chars[1]]
                    break

        n = len(ctx_ids)
        lo, window = 0, 0
        while True:
            hi = min(lo + room, n)
            targets = (0, 0)
            feature = QAFeature(str(_field(ex, "id")), window, context, q_ids, ctx_ids, ctx_offsets, lo, hi,
                                tmpl, targets, gold_text)
            if span is not None and lo <= span[0] and span[1] < hi:
                feature.targets = (feature.context_start + span[0] - lo, feature.context_start + span[1] - lo)
            features.append(feature)
            if hi >= n:
                break
            lo += doc_stride
            window += 1
    return features


class QACollator:
    """Batches of :class:`QAFeature`: ``idx``, ``token_type_ids`` (WordPiece), ``attention_mask``
    (B, T) and ``targets`` (B, 2) = [start, end] token positions."""

    def __init__(self, tokenizer: TokenizerLike, *, pad_to_multiple_of: int | None = None,
                 return_token_type_ids: bool | None = None) -> None:
        self.pad_id = tokenizer.pad_id
        self.pad_to_multiple_of = pad_to_multiple_of
        self.token_types = _wants_token_types(tokenizer, return_token_type_ids)

    def __call__(self, features: Sequence[QAFeature]) -> dict[str, torch.Tensor]:
        ids = [f.idx for f in features]
        idx = pad_sequences(ids, self.pad_id, pad_to_multiple_of=self.pad_to_multiple_of)  # (B, T)
        T = idx.shape[1]
        batch = {"idx": idx, "attention_mask": pad_sequences([[1] * len(s) for s in ids], 0, length=T)}
        if self.token_types:
            batch["token_type_ids"] = pad_sequences([f.token_type_ids for f in features], 0, length=T)  # (B, T)
        batch["targets"] = torch.tensor([list(f.targets) for f in features], dtype=torch.long)  # (B, 2)
        return batch


@dataclass(frozen=True)
class QAPrediction:
    """One candidate answer span."""

    text: str
    score: float
    """start logit + end logit."""
    probability: float
    """softmax of the scores over the example's n-best list."""
    start_char: int
    end_char: int
    feature_index: int


def qa_nbest(features: Sequence[QAFeature], start_logits: Any, end_logits: Any, *, n_best: int = 20,
             max_answer_len: int = 30) -> dict[str, list[QAPrediction]]:
    """The ``n_best`` highest-scoring valid spans of every example, across all its windows.

    ``start_logits``/``end_logits`` (F, T) (tensor or array, one row per feature, T >= the
    longest feature). A span is valid when both ends lie in the window's context,
    ``start <= end`` and it has at most ``max_answer_len`` tokens. Score = start logit +
    end logit; candidates are sorted best first, texts taken from the context through the
    offsets.
    """
    S = _as_2d_array(start_logits)  # (F, T)
    E = _as_2d_array(end_logits)  # (F, T)
    if S.shape[0] != len(features) or E.shape[0] != len(features):
        raise ValueError(f"{len(features)} features but logits for {S.shape[0]} / {E.shape[0]}")
    if S.shape != E.shape:
        raise ValueError(f"start logits {S.shape} and end logits {E.shape} differ in shape")
    F, T = S.shape
    k = max(1, min(n_best, T))
    c0 = np.array([f.context_start for f in features], dtype=np.int64)  # (F,)
    n = np.array([f.num_context_tokens for f in features], dtype=np.int64)  # (F,)
    # Per feature: the n_best best (score, start, end) among valid spans, -inf when fewer exist.
    best_score = np.full((F, k), -np.inf)  # (F, k)
    best_start = np.zeros((F, k), dtype=np.int64)  # (F, k) sequence positions
    best_end = np.zeros((F, k), dtype=np.int64)  # (F, k)
    pos = np.arange(T)
    for lo in range(0, F, 1024):
        hi = min(F, lo + 1024)
        inside = (pos[None, :] >= c0[lo:hi, None]) & (pos[None, :] < (c0 + n)[lo:hi, None])  # (f, T)
        s = np.where(inside, S[lo:hi], -np.inf)  # (f, T)
        e = np.where(inside, E[lo:hi], -np.inf)  # (f, T)
        top_s = np.argpartition(-s, k - 1, axis=1)[:, :k]  # (f, k)
        top_e = np.argpartition(-e, k - 1, axis=1)[:, :k]  # (f, k)
        s_val = np.take_along_axis(s, top_s, axis=1)  # (f, k)
        e_val = np.take_along_axis(e, top_e, axis=1)  # (f, k)
        length = top_e[:, None, :] - top_s[:, :, None]  # (f, k, k)
        scores = s_val[:, :, None] + e_val[:, None, :]  # (f, k, k)
        scores = np.where((length >= 0) & (length < max_answer_len), scores, -np.inf).reshape(hi - lo, k * k)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # (f, k)
        best_score[lo:hi] = np.take_along_axis(scores, order, axis=1)
        best_start[lo:hi] = np.take_along_axis(top_s, order // k, axis=1)
        best_end[lo:hi] = np.take_along_axis(top_e, order % k, axis=1)

    by_example: dict[str, list[int]] = {}
    for f_i, feat in enumerate(features):
        by_example.setdefault(feat.example_id, []).append(f_i)
    out: dict[str, list[QAPrediction]] = {}
    for ex_id, rows in by_example.items():
        sc = best_score[rows].ravel()  # (nf * k,)
        order = np.argsort(-sc, kind="stable")[:n_best]
        order = order[np.isfinite(sc[order])]
        if order.size == 0:
            out[ex_id] = []
            continue
        top = sc[order]
        probs = np.exp(top - top.max())
        probs /= probs.sum()
        preds = []
        for o, score, p in zip(order.tolist(), top.tolist(), probs.tolist()):
            f_i = rows[o // k]
            feat = features[f_i]
            s_span = feat.char_span(int(best_start[f_i, o % k]))
            e_span = feat.char_span(int(best_end[f_i, o % k]))
            assert s_span is not None and e_span is not None
            preds.append(QAPrediction(feat.context[s_span[0]: e_span[1]], float(score), float(p),
                                      s_span[0], e_span[1], f_i))
        out[ex_id] = preds
    return out


def _as_2d_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"logits must be (num_features, T), got shape {arr.shape}")
    return arr


def postprocess_qa(features: Sequence[QAFeature], start_logits: Any, end_logits: Any, n_best: int = 20,
                   max_answer_len: int = 30) -> dict[str, str]:
    """``{example_id: best answer text}`` ("" when no valid span exists); see :func:`qa_nbest`."""
    nbest = qa_nbest(features, start_logits, end_logits, n_best=n_best, max_answer_len=max_answer_len)
    return {ex_id: (preds[0].text if preds else "") for ex_id, preds in nbest.items()}


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation) | {"\u2018", "\u2019", "\u201c", "\u201d"})
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------
# Conditional generation (GPT)
# ---------------------------------------------------------------------------------------


def _unpack_conditional(example: Any) -> tuple[str | Sequence[int], str | Sequence[int] | None]:
    if isinstance(example, Mapping):
        for p_key, t_key in (("prompt", "target"), ("source", "target"), ("input", "output"),
                             ("document", "summary"), ("question", "answer")):
            if p_key in example:
                return example[p_key], example.get(t_key)
        raise KeyError(f"conditional example needs a prompt/source/input key, got {sorted(example)}")
    if isinstance(example, str):
        return example, None
    return example[0], (example[1] if len(example) > 1 else None)


class ConditionalLMCollator:
    """Prompt -> target for decoder-only models (summaries, translation, generative QA, dialogue).

    Each example is ``(prompt, target)`` (strings or id lists) or a dict (``prompt``/
    ``target``, ``source``/``target``, ``input``/``output``, ...). The sequence is
    ``prompt + separator + target + eos``; the prompt loses tokens from its *start* until
    the sequence fits ``max_len + 1`` tokens (if the target alone is too long it is cut at
    its end and loses its eos). ``idx = seq[:-1]``, ``targets = seq[1:]`` with -100 on
    every position that predicts a prompt or separator token, so the loss covers the
    target and its eos only.

    ``separator``: a string, ids, or None = [SEP] if the vocabulary has one, else the ids of
    ``"\\n"``. Examples without a target (or ``generation=True``) give generation batches:
    ``idx = prompt + separator``, left-padded, no ``targets``.
    """

    def __init__(self, tokenizer: TokenizerLike, max_len: int, *, separator: str | Sequence[int] | None = None,
                 padding_side: Literal["right", "left"] = "right", pad_to_multiple_of: int | None = None,
                 add_eos: bool = True, generation: bool = False) -> None:
        self.tokenizer = tokenizer
        self.max_len = int(max_len)
        self.padding_side = padding_side
        self.pad_to_multiple_of = pad_to_multiple_of
        self.add_eos = add_eos
        self.generation = generation
        self.eos_id = eos_or_sep(tokenizer)
        if separator is None:
            if tokenizer.sep_id is not None:
                sep = [int(tokenizer.sep_id)]
            else:
                sep = list(tokenizer.encode("\n", add_special_tokens=False).ids) or [self.eos_id]
        elif isinstance(separator, str):
            sep = list(tokenizer.encode(separator, add_special_tokens=False).ids)
        else:
            sep = [int(i) for i in separator]
        self.separator = sep

    def _ids(self, x: str | Sequence[int]) -> list[int]:
        if isinstance(x, str):
            return list(self.tokenizer.encode(x, add_special_tokens=False).ids)
        return [int(i) for i in x]

    def build(self, prompt: str | Sequence[int], target: str | Sequence[int]) -> tuple[list[int], list[int]]:
        """``(idx, targets)`` of one example (unpadded)."""
        p, t = self._ids(prompt), self._ids(target)
        tail = t + ([self.eos_id] if self.add_eos else [])
        budget = self.max_len + 1
        keep = budget - len(self.separator) - len(tail)
        if keep < 0:  # the target alone does not fit: no prompt, cut the target's end
            p = []
            tail = t[: max(0, budget - len(self.separator))]
        elif len(p) > keep:
            p = p[len(p) - keep:]
        seq = p + self.separator + tail
        first_target = len(p) + len(self.separator)  # index in seq of the first target token
        idx = seq[:-1]
        targets = [tok if j + 1 >= first_target else IGNORE_INDEX for j, tok in enumerate(seq[1:])]
        return idx, targets

    def prompt_ids(self, prompt: str | Sequence[int]) -> list[int]:
        """``prompt + separator`` cut from the left to ``max_len`` tokens (for generation)."""
        ids = self._ids(prompt) + self.separator
        return ids[-self.max_len:]

    def __call__(self, examples: Sequence[Any]) -> dict[str, torch.Tensor]:
        pairs = [_unpack_conditional(e) for e in examples]
        pad_id = self.tokenizer.pad_id
        if self.generation or any(t is None for _, t in pairs):
            ids = [self.prompt_ids(p) for p, _ in pairs]
            idx = pad_sequences(ids, pad_id, padding_side="left", pad_to_multiple_of=self.pad_to_multiple_of)
            T = idx.shape[1]
            return {"idx": idx, "attention_mask": pad_sequences([[1] * len(s) for s in ids], 0, length=T,
                                                                padding_side="left")}
        rows = [self.build(p, t) for p, t in pairs]  # type: ignore[arg-type]
        kw: dict[str, Any] = dict(padding_side=self.padding_side, pad_to_multiple_of=self.pad_to_multiple_of)
        idx = pad_sequences([r[0] for r in rows], pad_id, **kw)  # (B, T)
        T = idx.shape[1]
        return {"idx": idx,
                "targets": pad_sequences([r[1] for r in rows], IGNORE_INDEX, length=T, **kw),  # (B, T)
                "attention_mask": pad_sequences([[1] * len(r[0]) for r in rows], 0, length=T, **kw)}  # (B, T)
