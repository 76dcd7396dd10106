"""Extractive QA windows: a (question, context) cut into ``[CLS] question [SEP] window [SEP]``
features, their batches, and the best answer spans over all windows of a question.

* :func:`prepare_qa_features` cuts every context into windows ``doc_stride`` tokens apart
  (:func:`windows` picks the stride per question; :func:`train_features` keeps the windows
  a model trains on); :class:`QACollator` batches them (``targets`` (B, 2) = [start, end]).
* :func:`qa_nbest` / :func:`postprocess_qa` turn start/end logits into answer texts.
* :func:`top_windows_by_overlap` keeps the windows that share the most question words
  (retrieve, then read).
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gptbert.data.collate import SpecialTemplate, special_template, wants_token_types
from gptbert.data.objectives import TokenizerLike, pad_sequences
from gptbert.data.readers import QAExample

DOC_STRIDE = 128
"""Tokens between the starts of two consecutive context windows (BERT's convention: the step, not the overlap)."""
MAX_QUERY_LEN = 64
_STOP = frozenset("the a an of to in and or is are was were be by for on at as with that this which what who "
                  "when where why how does do did it its from".split())


def squad_examples(source: str | Path | Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flatten SQuAD v1.1 JSON (a path or the parsed object) into one dict per question:
    ``id``, ``question``, ``context``, ``answers`` = list of ``{"text", "answer_start"}``."""
    from gptbert.data.readers.formats import DataError
    from gptbert.data.readers.squad import load_squad_doc

    data = load_squad_doc(Path(source)) if not isinstance(source, Mapping) else source
    out: list[dict[str, Any]] = []
    try:
        for article in data["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    out.append({"id": str(qa["id"]), "question": qa["question"], "context": para["context"],
                                "answers": list(qa.get("answers", []))})
    except (KeyError, TypeError) as e:
        where = source if not isinstance(source, Mapping) else "SQuAD data"
        raise DataError(f"{where}: not SQuAD v1.1 (missing or wrong field {e}); expected "
                        "data[].paragraphs[].qas[] with id, question, answers") from None
    return out


def example_field(example: Any, key: str) -> Any:
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
    doc_stride: int = DOC_STRIDE,
    max_query_len: int = MAX_QUERY_LEN,
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
        context: str = example_field(ex, "context")
        if context not in contexts:
            enc = tokenizer.encode(context, add_special_tokens=False)
            contexts[context] = (np.asarray(enc.ids, dtype=np.int64),
                                 np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2))
        ctx_ids, ctx_offsets = contexts[context]
        q_ids = list(tokenizer.encode(example_field(ex, "question"), add_special_tokens=False).ids)[:max_query_len]
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
            feature = QAFeature(str(example_field(ex, "id")), window, context, q_ids, ctx_ids, ctx_offsets, lo, hi,
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
        self.token_types = wants_token_types(tokenizer, return_token_type_ids)

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
# Windows of the questions
# ---------------------------------------------------------------------------------------


def _query_len(max_len: int) -> int:
    """Question tokens kept: at most :data:`MAX_QUERY_LEN`, and at most half the window."""
    return min(MAX_QUERY_LEN, max_len // 2)


def windows(examples: Sequence[Any], tokenizer: TokenizerLike, *, max_len: int, doc_stride: int) -> list[QAFeature]:
    """:func:`prepare_qa_features` with a stride per question: ``doc_stride``, reduced where it
    would exceed that question's window room (and skip context tokens)."""
    q_max = _query_len(max_len)
    groups: dict[int, list[Any]] = {}
    for ex in examples:
        q = min(q_max, len(tokenizer.encode(example_field(ex, "question"), add_special_tokens=False).ids))
        room = max_len - 4 - q
        # Rounded down to a multiple of 16 (at most 16 tokens more overlap): few groups, so that
        # each long context is tokenized only a few times.
        stride = max(8, min(doc_stride, room if room < 32 else room - room % 16))
        groups.setdefault(stride, []).append(ex)
    feats: list[QAFeature] = []
    for stride, group in groups.items():
        feats.extend(prepare_qa_features(group, tokenizer, max_len=max_len, doc_stride=stride, max_query_len=q_max))
    order = {str(example_field(ex, "id")): i for i, ex in enumerate(examples)}
    feats.sort(key=lambda f: (order.get(f.example_id, 0), f.window))
    return feats


def train_features(
    examples: Sequence[QAExample], tokenizer: TokenizerLike, *, max_len: int = 384, doc_stride: int = DOC_STRIDE,
    negatives_per_positive: int = 2, seed: int = 0,
) -> list[QAFeature]:
    """Windows of the answerable questions: all that contain the answer, plus up to
    ``negatives_per_positive`` others per question (target [CLS]), chosen with ``seed``."""
    answerable = [ex for ex in examples if ex.answerable]
    if not answerable:
        raise ValueError("no question has an answer that is a span of its context: nothing to train on")
    feats = windows(answerable, tokenizer, max_len=max_len, doc_stride=doc_stride)
    rng = np.random.default_rng(seed)
    by_ex: dict[str, list[QAFeature]] = {}
    for f in feats:
        by_ex.setdefault(f.example_id, []).append(f)
    out: list[QAFeature] = []
    for ex_id, fs in by_ex.items():
        pos = [f for f in fs if f.targets != (0, 0)]
        neg = [f for f in fs if f.targets == (0, 0)]
        if not pos:
            continue  # the answer could not be located in tokens
        k = min(len(neg), negatives_per_positive)
        picked = [neg[i] for i in sorted(rng.choice(len(neg), size=k, replace=False).tolist())] if k else []
        out.extend(pos + picked)
    if not out:
        raise ValueError("no training window contains its answer (answers could not be aligned to tokens)")
    return out


def answer_span(ex: QAExample) -> tuple[int, int] | None:
    """Character span of the first answer with an offset (None: none has one)."""
    for a in ex.answers:
        if a.get("answer_start") is not None:
            return int(a["answer_start"]), int(a["answer_start"]) + len(a["text"])
    return None


# ---------------------------------------------------------------------------------------
# Retrieval: the windows sharing the most question words
# ---------------------------------------------------------------------------------------


def content_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` without one-letter words and stop words."""
    return [w for w in re.findall(r"\w+", text.lower()) if len(w) > 1 and w not in _STOP]


def overlap_scores(question: str, passages: Sequence[str]) -> list[float]:
    """Each passage's summed IDF (computed over ``passages``) of the question's content words it
    contains: a lexical retriever in the manner of DrQA's, enough to find the passage a
    question paraphrases among a document's windows."""
    words = [set(content_words(p)) for p in passages]
    q = set(content_words(question))
    df = {w: sum(1 for ws in words if w in ws) for w in q}
    idf = {w: math.log((1 + len(passages)) / (1 + df[w])) + 1.0 for w in q}
    return [sum(idf[w] for w in q & ws) for ws in words]


def top_windows_by_overlap(feats: Sequence[QAFeature], questions: dict[str, str], k: int) -> list[QAFeature]:
    """The ``k`` windows of each example with the highest :func:`overlap_scores` (ties: the
    earlier window), in their original order; examples with at most ``k`` windows keep all."""
    if k < 1:
        raise ValueError(f"top_windows={k}: expected at least 1")
    by_ex: dict[str, list[QAFeature]] = {}
    for f in feats:
        by_ex.setdefault(f.example_id, []).append(f)
    keep: set[int] = set()
    for ex_id, fs in by_ex.items():
        if len(fs) <= k:
            keep.update(id(f) for f in fs)
            continue
        scores = overlap_scores(questions[ex_id], [f.context[slice(*f.context_span)] for f in fs])
        order = sorted(range(len(fs)), key=lambda i: (-scores[i], i))[:k]
        keep.update(id(fs[i]) for i in order)
    return [f for f in feats if id(f) in keep]


def retrieval_recall(tokenizer: TokenizerLike, examples: Sequence[QAExample], k: int, *, max_len: int,
                     doc_stride: int) -> float | None:
    """Percent of the answerable questions for which one of the ``k`` windows that
    :func:`top_windows_by_overlap` keeps contains the whole answer (None: none answerable):
    what retrieval leaves the reader to find."""
    answerable = [ex for ex in examples if ex.answerable]
    if not answerable:
        return None
    feats = windows(answerable, tokenizer, max_len=max_len, doc_stride=doc_stride)
    kept = top_windows_by_overlap(feats, {ex.id: ex.question for ex in answerable}, k)
    found = {f.example_id for f in kept if f.targets != (0, 0)}
    return 100.0 * len(found) / len(answerable)
