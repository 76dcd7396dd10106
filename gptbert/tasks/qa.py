"""Question answering: extractive for BERT (and any 'qa' head), generative for GPT.

**Extractive** (Devlin et al. 2019, section 4.2): ``[CLS] question [SEP] context window
[SEP]``; a long context is cut into windows ``doc_stride`` tokens apart
(:func:`gptbert.data.collate.prepare_qa_features`); the model gives start/end logits
(B, T, 2) and the answer is the best valid span (start <= end, at most
``max_answer_len`` tokens, inside the context) over all windows of a question
(:func:`gptbert.data.collate.qa_nbest`). Training uses only questions whose answer is a
span of the context: every window that contains the answer, plus a few windows that do
not (target = [CLS]) -- ``negatives_per_positive`` per question, seeded -- because a
SQuAD article here is ~60,000 characters, i.e. hundreds of windows per question.

**Generative** (GPT, Radford et al. 2019 style): the prompt is
``"context: <passage>\\nquestion: <question>\\nanswer:"`` and the model is trained as a
conditional LM with the loss on the answer only
(:class:`gptbert.data.collate.ConditionalLMCollator`). A context longer than the model's
window is reduced to the passage (a window of context tokens) that best matches the
question words (IDF-weighted overlap); in training, a window that contains the answer
when the answer is a span of the context. Free-text answers (not spans) are learned as
they are. The answer's start/end are its character offsets in the context when the
generated text occurs there, else -1.

Scores follow SQuAD v1.1: exact match and token F1 after the official normalisation,
in percent, over all questions and over the answerable (span) ones.
"""

from __future__ import annotations

import math
import re
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from gptbert.data.collate import ConditionalLMCollator, QACollator, QAFeature, prepare_qa_features, qa_nbest
from gptbert.data.readers import DataWarning, QAExample, SquadData, read_squad, train_dev_split
from gptbert.tasks import ListDataset, autocast, batched_outputs, model_device
from gptbert.tokenizer import Tokenizer

ANSWER_SEPARATOR = " "
"""Between the prompt (ending in 'answer:') and the answer."""
DEFAULT_MAX_NEW_TOKENS = 32
MAX_QUERY_LEN = 64
_STOP = frozenset("the a an of to in and or is are was were be by for on at as with that this which what who "
                  "when where why how does do did it its from".split())


def qa_prompt(question: str, context: str) -> str:
    """The generative QA prompt (the answer follows after :data:`ANSWER_SEPARATOR`)."""
    return f"context: {' '.join(context.split())}\nquestion: {' '.join(question.split())}\nanswer:"


def is_generative(model: nn.Module) -> bool:
    config = model.config  # type: ignore[union-attr]
    return config.family == "gpt" and config.head == "lm"


def _check_extractive(model: nn.Module) -> None:
    config = model.config  # type: ignore[union-attr]
    if config.head != "qa":
        raise ValueError(f"extractive QA needs a model with a 'qa' head (or a GPT 'lm' model for generative QA); "
                         f"this {config.family} model has head {config.head!r}")
    if config.family == "elmo" and config.use_char_cnn:
        raise ValueError("extractive QA with a character-CNN ELMo is not supported (the QA batches carry no "
                         "char_ids); use BERT, or ELMo with use_char_cnn=False")


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


@dataclass
class QAData:
    train: list[QAExample]
    dev: list[QAExample]
    source: str


def read_questions(path: str | Path) -> SquadData:
    """A SQuAD v1.1 file; answers whose offsets are wrong are corrected or marked non-span
    (their counts are in ``problems``; no warning is printed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return read_squad(path)


def load_data(train_path: str | Path, dev_path: str | Path | None = None, *, dev_fraction: float = 0.1,
              seed: int = 0, max_train: int | None = None) -> QAData:
    """Train (and dev) questions; without a dev file a seeded 10% of the train questions."""
    train = read_questions(train_path)
    if dev_path:
        dev = read_questions(dev_path)
    else:
        train, dev = train_dev_split(train, dev_fraction=dev_fraction, seed=seed)
    examples = list(train)
    if max_train is not None and len(examples) > max_train:
        rng = np.random.default_rng(seed)
        examples = [examples[i] for i in sorted(rng.choice(len(examples), size=max_train, replace=False).tolist())]
    return QAData(examples, list(dev), str(train_path))


def gold_answers(ex: QAExample) -> list[str]:
    return [a["text"] for a in ex.answers if a.get("text", "").strip()] or [""]


# ---------------------------------------------------------------------------------------
# Extractive
# ---------------------------------------------------------------------------------------


def _query_len(max_len: int) -> int:
    """Question tokens kept: at most :data:`MAX_QUERY_LEN`, and at most half the window."""
    return min(MAX_QUERY_LEN, max_len // 2)


def windows(examples: Sequence[Any], tokenizer: Tokenizer, *, max_len: int, doc_stride: int) -> list[QAFeature]:
    """:func:`prepare_qa_features` with a stride per question: ``doc_stride``, reduced where it
    would exceed that question's window room (and skip context tokens)."""
    q_max = _query_len(max_len)
    groups: dict[int, list[Any]] = {}
    for ex in examples:
        q = min(q_max, len(tokenizer.encode(_question(ex), add_special_tokens=False).ids))
        room = max_len - 4 - q
        # Rounded down to a multiple of 16 (at most 16 tokens more overlap): few groups, so that
        # each long context is tokenized only a few times.
        stride = max(8, min(doc_stride, room if room < 32 else room - room % 16))
        groups.setdefault(stride, []).append(ex)
    feats: list[QAFeature] = []
    for stride, group in groups.items():
        feats.extend(prepare_qa_features(group, tokenizer, max_len=max_len, doc_stride=stride, max_query_len=q_max))
    order = {str(_field_id(ex)): i for i, ex in enumerate(examples)}
    feats.sort(key=lambda f: (order.get(f.example_id, 0), f.window))
    return feats


def _field_id(example: Any) -> str:
    return str(example["id"] if isinstance(example, dict) else example.id)


def train_features(
    examples: Sequence[QAExample], tokenizer: Tokenizer, *, max_len: int = 384, doc_stride: int = 128,
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


def train_dataset(examples: Sequence[QAExample], tokenizer: Tokenizer, **kw: Any) -> ListDataset:
    return ListDataset(train_features(examples, tokenizer, **kw))


def _question(example: Any) -> str:
    return example["question"] if isinstance(example, dict) else example.question


def make_collator(tokenizer: Tokenizer, model_or_config: Any) -> QACollator:
    config = getattr(model_or_config, "config", model_or_config)
    return QACollator(tokenizer, return_token_type_ids=config.family == "bert" and bool(config.type_vocab_size))


def extractive_nbest(
    model: nn.Module, tokenizer: Tokenizer, examples: Sequence[Any], *, max_len: int = 384, doc_stride: int = 128,
    n_best: int = 20, max_answer_len: int = 30, batch_size: int = 64, precision: str = "fp32",
    top_windows: int | None = None,
) -> dict[str, list[Any]]:
    """``{example id: [QAPrediction, ...]}`` best first, over the windows of each example:
    all of them, or with ``top_windows`` only that many per example, those that share the
    most question words (:func:`top_windows_by_overlap`: retrieve, then read).

    ``examples``: QAExample objects or dicts with ``id``, ``question``, ``context``.
    """
    _check_extractive(model)
    max_len = min(max_len, model.config.block_size)  # type: ignore[union-attr]
    feats = windows(examples, tokenizer, max_len=max_len, doc_stride=doc_stride)
    if top_windows is not None:
        feats = top_windows_by_overlap(feats, {_field_id(ex): _question(ex) for ex in examples}, top_windows)
    collate = make_collator(tokenizer, model)
    T = max(len(f) for f in feats)
    starts = np.zeros((len(feats), T), dtype=np.float32)  # (F, T)
    ends = np.zeros((len(feats), T), dtype=np.float32)  # (F, T)
    row = 0
    for _, logits in batched_outputs(model, collate, feats, batch_size=batch_size, precision=precision):
        b, t = logits.shape[:2]  # logits (B, t, 2)
        starts[row:row + b, :t] = logits[..., 0].cpu().numpy()
        ends[row:row + b, :t] = logits[..., 1].cpu().numpy()
        row += b
    return qa_nbest(feats, starts, ends, n_best=n_best, max_answer_len=max_answer_len)


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"\w+", text.lower()) if len(w) > 1 and w not in _STOP]


def overlap_scores(question: str, passages: Sequence[str]) -> list[float]:
    """Each passage's summed IDF (computed over ``passages``) of the question's content words it
    contains: a lexical retriever in the manner of DrQA's, enough to find the passage a
    question paraphrases among a document's windows."""
    words = [set(_words(p)) for p in passages]
    q = set(_words(question))
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


def retrieval_recall(tokenizer: Tokenizer, examples: Sequence[QAExample], k: int, *, max_len: int,
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


# ---------------------------------------------------------------------------------------
# Generative
# ---------------------------------------------------------------------------------------


_CONTEXT_CACHE: weakref.WeakKeyDictionary[Tokenizer, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()
"""Token offsets of recent contexts, per tokenizer object (weak keys: a collected tokenizer's
``id()`` may be reused by a new one, whose offsets differ)."""


def _context_offsets(tokenizer: Tokenizer, context: str) -> np.ndarray:
    """(n_tokens, 2) character offsets of ``context``'s tokens, cached for the last 64 contexts."""
    try:
        cache = _CONTEXT_CACHE.setdefault(tokenizer, {})
    except TypeError:  # not weak-referenceable: no cache
        cache = {}
    if context not in cache:
        if len(cache) >= 64:
            cache.clear()
        enc = tokenizer.encode(context, add_special_tokens=False)
        cache[context] = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
    return cache[context]


def select_passage(question: str, context: str, tokenizer: Tokenizer, budget: int, *,
                   answer_span: tuple[int, int] | None = None) -> str:
    """The part of ``context`` (at most ``budget`` tokens) that best matches the question.

    Windows of ``budget`` tokens, ``budget // 2`` apart, are scored by the summed IDF (over
    the windows) of the question's content words they contain; with ``answer_span``
    (character offsets) only windows containing the answer compete.
    """
    if budget < 1:
        raise ValueError(f"no room for the context (budget {budget} tokens)")
    offsets = _context_offsets(tokenizer, context)
    n = len(offsets)
    if n <= budget:
        return context
    step = max(1, budget // 2)
    starts = list(range(0, n - budget + 1, step))
    if starts[-1] != n - budget:
        starts.append(n - budget)
    spans = [(int(offsets[s, 0]), int(offsets[s + budget - 1, 1])) for s in starts]
    if answer_span is not None:
        inside = [i for i, (a, b) in enumerate(spans) if a <= answer_span[0] and answer_span[1] <= b]
        candidates = inside or [i for i, (a, b) in enumerate(spans) if a < answer_span[1] and answer_span[0] < b]
    else:
        candidates = []
    candidates = candidates or list(range(len(spans)))
    scores = overlap_scores(question, [context[a:b] for a, b in spans])
    best = max(candidates, key=lambda i: (scores[i], -i))
    a, b = spans[best]
    return context[a:b]


def _ids(tokenizer: Tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


def generative_prompt(tokenizer: Tokenizer, question: str, context: str, *, max_len: int, answer_room: int,
                      answer_span: tuple[int, int] | None = None) -> str:
    """:func:`qa_prompt` with the context reduced to what fits ``max_len - answer_room`` tokens."""
    question = " ".join(question.split())
    overhead = len(_ids(tokenizer, qa_prompt("", ""))) + len(_ids(tokenizer, ANSWER_SEPARATOR)) + 2
    room = max_len - answer_room - overhead  # question + context
    if room < 16:
        raise ValueError(f"max_len {max_len} leaves {room} tokens for the question and the context after "
                         f"{answer_room} answer tokens; use a longer max_len")
    q_ids = _ids(tokenizer, question)
    if len(q_ids) > room // 2:  # a long question keeps its end, next to the answer slot
        question = tokenizer.decode(q_ids[len(q_ids) - room // 2:]).strip()
        q_ids = _ids(tokenizer, question)
    budget = max(8, room - len(q_ids))
    # Selected on the original text (offsets stay valid); qa_prompt then collapses whitespace,
    # which never adds tokens.
    return qa_prompt(question, select_passage(question, context, tokenizer, budget, answer_span=answer_span))


def _answer_span(ex: QAExample) -> tuple[int, int] | None:
    for a in ex.answers:
        if a.get("answer_start") is not None:
            return int(a["answer_start"]), int(a["answer_start"]) + len(a["text"])
    return None


def generative_examples(examples: Sequence[QAExample], tokenizer: Tokenizer, *, max_len: int) -> list[tuple[str, str]]:
    """(prompt, answer) pairs for the conditional-LM collator: the first gold answer as target."""
    out = []
    for ex in examples:
        target = gold_answers(ex)[0]
        room = len(_ids(tokenizer, target)) + 2
        out.append((generative_prompt(tokenizer, ex.question, ex.context, max_len=max_len, answer_room=room,
                                      answer_span=_answer_span(ex)), target))
    return out


def make_lm_collator(tokenizer: Tokenizer, max_len: int) -> ConditionalLMCollator:
    return ConditionalLMCollator(tokenizer, max_len, separator=ANSWER_SEPARATOR)


@torch.inference_mode()
def _sequence_scores(model: nn.Module, prompts: Sequence[list[int]], answers: Sequence[list[int]]) -> list[float]:
    """Geometric-mean probability of each answer's tokens given its prompt (0 for an empty answer)."""
    device = model_device(model)
    out = []
    for p, a in zip(prompts, answers):
        if not a:
            out.append(0.0)
            continue
        seq = torch.tensor([p + a], device=device)  # (1, P + A)
        logits, _ = model(seq[:, :-1])  # (1, P + A - 1, V)
        logp = torch.log_softmax(logits[0, len(p) - 1:].float(), dim=-1)  # (A, V)
        picked = logp.gather(1, torch.tensor(a, device=device)[:, None]).squeeze(1)  # (A,)
        out.append(float(picked.mean().exp()))
    return out


def locate(answer: str, context: str) -> tuple[int, int]:
    """Character offsets of ``answer`` in ``context`` (exact, then ignoring case), else (-1, -1)."""
    a = answer.strip()
    if not a:
        return -1, -1
    i = context.find(a)
    if i < 0:
        m = re.search(r"\s+".join(re.escape(w) for w in a.split()), context, re.IGNORECASE)
        if m is None:
            return -1, -1
        return m.start(), m.end()
    return i, i + len(a)


def generate_answers(
    model: nn.Module, tokenizer: Tokenizer, questions: Sequence[str], contexts: Sequence[str], *,
    max_len: int = 384, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, batch_size: int = 16, precision: str = "fp32",
) -> list[dict[str, Any]]:
    """Generated answers (greedy, stopping at end-of-text or a newline) with a score and offsets."""
    from gptbert.generate import GenerationConfig, generate

    block = model.config.block_size  # type: ignore[union-attr]
    max_len = min(max_len, block)
    max_new = min(max_new_tokens, max_len // 4)
    collate = make_lm_collator(tokenizer, max_len)
    eos = tokenizer.eos_id if tokenizer.eos_id is not None else tokenizer.sep_id
    cfg = GenerationConfig(max_new_tokens=max_new, eos_token_id=eos, pad_token_id=tokenizer.pad_id,
                           stop_strings=["\n"])
    prompts = [collate.prompt_ids(generative_prompt(tokenizer, q, c, max_len=max_len, answer_room=max_new))
               for q, c in zip(questions, contexts)]
    device = model_device(model)
    results: list[dict[str, Any]] = []
    for s in range(0, len(prompts), batch_size):
        chunk = prompts[s:s + batch_size]
        with autocast(precision, device):
            new_ids = generate(model, chunk, cfg, tokenizer=tokenizer)
        assert isinstance(new_ids, list)
        clean = [[i for i in ids if i != eos] for ids in new_ids]
        texts = [tokenizer.decode(ids, skip_special_tokens=True).split("\n")[0].strip() for ids in clean]
        answer_ids = [_ids(tokenizer, t) if t else [] for t in texts]
        # Score the answer as it would be fed back: the separator then the answer's own tokens.
        scores = _sequence_scores(model, chunk, answer_ids)
        for j, (text, score) in enumerate(zip(texts, scores)):
            start, end = locate(text, contexts[s + j])
            results.append({"answer": text, "score": score, "start": start, "end": end})
    return results


# ---------------------------------------------------------------------------------------
# The public entry point
# ---------------------------------------------------------------------------------------


def answer(
    model: nn.Module, tokenizer: Tokenizer, questions: Sequence[str], contexts: Sequence[str], *,
    max_len: int = 384, doc_stride: int = 128, n_best: int = 20, max_answer_len: int = 30,
    batch_size: int = 32, precision: str = "fp32", max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    top_windows: int | None = None,
) -> list[dict[str, Any]]:
    """Answer each question from its context: ``{"answer", "score", "start", "end"}``.

    Extractive ('qa' head): the best span; ``score`` is its probability among the n-best
    spans, ``start``/``end`` its character offsets in the context (``n_best`` holds the
    candidates); ``top_windows`` reads only that many windows of a long context, those
    sharing the most question words. Generative (GPT 'lm' head): the generated answer; ``score`` is the
    geometric-mean probability of its tokens; ``start``/``end`` = -1 unless it occurs in
    the context.
    """
    if isinstance(questions, str) or isinstance(contexts, str):
        raise TypeError("answer() expects lists of questions and contexts, got a single str")
    if len(questions) != len(contexts):
        raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
    for i, (q, c) in enumerate(zip(questions, contexts)):
        if not q.strip():
            raise ValueError(f"question {i} is empty")
        if not c.strip():
            raise ValueError(f"context {i} is empty")
    if not questions:
        return []
    if is_generative(model):
        return generate_answers(model, tokenizer, questions, contexts, max_len=max_len,
                                max_new_tokens=max_new_tokens, batch_size=batch_size, precision=precision)
    examples = [{"id": str(i), "question": q, "context": c, "answers": []}
                for i, (q, c) in enumerate(zip(questions, contexts))]
    nbest = extractive_nbest(model, tokenizer, examples, max_len=max_len, doc_stride=doc_stride, n_best=n_best,
                             max_answer_len=max_answer_len, batch_size=batch_size, precision=precision,
                             top_windows=top_windows)
    out = []
    for i in range(len(examples)):
        preds = nbest.get(str(i), [])
        if not preds:
            out.append({"answer": "", "score": 0.0, "start": -1, "end": -1, "n_best": []})
            continue
        best = preds[0]
        out.append({"answer": best.text, "score": best.probability, "start": best.start_char, "end": best.end_char,
                    "n_best": [{"answer": p.text, "score": p.probability, "logit": p.score, "start": p.start_char,
                                "end": p.end_char} for p in preds]})
    return out


def evaluate(
    model: nn.Module, tokenizer: Tokenizer, examples: Sequence[QAExample], *, max_len: int = 384,
    doc_stride: int = 128, n_best: int = 20, max_answer_len: int = 30, batch_size: int = 32,
    precision: str = "fp32", max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, top_windows: int | None = None,
) -> dict[str, Any]:
    """SQuAD v1.1 exact match / F1 (percent) over all questions and over the answerable ones."""
    from gptbert.metrics import squad_exact_match, squad_f1

    if not examples:
        raise ValueError("no questions to evaluate")
    preds = answer(model, tokenizer, [e.question for e in examples], [e.context for e in examples],
                   max_len=max_len, doc_stride=doc_stride, n_best=n_best, max_answer_len=max_answer_len,
                   batch_size=batch_size, precision=precision, max_new_tokens=max_new_tokens,
                   top_windows=top_windows)
    em = np.array([squad_exact_match(p["answer"], gold_answers(e)) for p, e in zip(preds, examples)])
    f1 = np.array([squad_f1(p["answer"], gold_answers(e)) for p, e in zip(preds, examples)])
    span = np.array([e.answerable for e in examples])
    out: dict[str, Any] = {
        "exact_match": float(100 * em.mean()),
        "f1": float(100 * f1.mean()),
        "n": len(examples),
        "n_answerable": int(span.sum()),
        "mode": "generative" if is_generative(model) else "extractive",
    }
    if span.any():
        out["exact_match_answerable"] = float(100 * em[span].mean())
        out["f1_answerable"] = float(100 * f1[span].mean())
    if top_windows is not None and not is_generative(model):
        out["top_windows"] = top_windows
        out["answer_in_read_windows"] = retrieval_recall(
            tokenizer, examples, top_windows, max_len=min(max_len, model.config.block_size),  # type: ignore[union-attr]
            doc_stride=doc_stride)
    out["predictions"] = [{"id": e.id, "question": e.question, "prediction": p["answer"], "gold": gold_answers(e),
                           "answerable": bool(e.answerable)} for e, p in zip(examples, preds)]
    return out


# ---------------------------------------------------------------------------------------
# A smaller SQuAD file for quick runs
# ---------------------------------------------------------------------------------------


def window_contexts(examples: Sequence[QAExample], *, chars: int = 1500) -> dict[str, Any]:
    """SQuAD JSON (articles by title) in which each question gets its own paragraph: a ``chars``-long window of
    its real context (cut at word boundaries), centred on the answer when the answer is a
    span (offsets shifted), else on the passage that best matches the question words.

    squad-mini's articles are ~60,000 characters each, i.e. hundreds of windows per
    question for an extractive model; this keeps the text real while making quick
    fine-tuning and evaluation runs cheap. It is an easier task than the full file.
    """
    articles: dict[str, list[dict[str, Any]]] = {}
    for ex in examples:
        ctx = ex.context
        span = _answer_span(ex)
        if span is not None:
            centre = (span[0] + span[1]) // 2
        else:
            q = set(_words(ex.question))
            step = max(1, chars // 2)
            starts = list(range(0, max(1, len(ctx) - chars + 1), step))
            centre = max(starts, key=lambda s: (len(q & set(_words(ctx[s:s + chars]))), -s)) + chars // 2
        lo = max(0, min(centre - chars // 2, len(ctx) - chars))
        hi = min(len(ctx), lo + chars)
        while lo > 0 and not ctx[lo - 1].isspace():
            lo += 1
        while hi < len(ctx) and not ctx[hi].isspace():
            hi -= 1
        if span is not None:
            lo, hi = min(lo, span[0]), max(hi, span[1])
        answers = []
        for a in ex.answers:
            start = a.get("answer_start")
            answers.append({"text": a["text"], "answer_start": None if start is None else int(start) - lo})
        articles.setdefault(ex.title, []).append(
            {"context": ctx[lo:hi], "qas": [{"id": ex.id, "question": ex.question, "answers": answers}]})
    return {"version": "1.1", "data": [{"title": t, "paragraphs": ps} for t, ps in articles.items()]}


# ---------------------------------------------------------------------------------------
# Article splits and self-supervised cloze questions
# ---------------------------------------------------------------------------------------


def to_squad(examples: Sequence[QAExample]) -> dict[str, Any]:
    """SQuAD v1.1 JSON of ``examples``: one article per title (first-seen order), one
    paragraph per distinct context, questions in their given order."""
    articles: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for ex in examples:
        paragraphs = articles.setdefault(ex.title, {})
        paragraphs.setdefault(ex.context, []).append(
            {"id": ex.id, "question": ex.question, "answers": [dict(a) for a in ex.answers]})
    return {"version": "1.1", "data": [
        {"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs.items()]}
        for title, paragraphs in articles.items()]}


def split_articles(examples: Sequence[QAExample], *, dev_titles: Sequence[str] = (), dev_articles: int = 0,
                   seed: int = 0) -> tuple[list[QAExample], list[QAExample]]:
    """Train and dev questions, whole articles apart: dev holds every question of the articles
    named in ``dev_titles`` (exact titles) or else of ``dev_articles`` seeded-random ones, so no
    dev question is about a text that a training question (or a cloze question built from the
    training articles) has seen."""
    titles = list(dict.fromkeys(ex.title for ex in examples))
    if dev_titles:
        unknown = [t for t in dev_titles if t not in titles]
        if unknown:
            raise ValueError(f"no article titled {unknown[0]!r}; titles: {', '.join(map(repr, titles))}")
        dev = set(dev_titles)
    else:
        if not 0 < dev_articles < len(titles):
            raise ValueError(f"dev_articles={dev_articles}: expected 1..{len(titles) - 1} ({len(titles)} articles)")
        rng = np.random.default_rng(seed)
        dev = {titles[i] for i in rng.choice(len(titles), size=dev_articles, replace=False).tolist()}
    if len(dev) == len(titles):
        raise ValueError("every article went to dev; leave at least one for training")
    return [ex for ex in examples if ex.title not in dev], [ex for ex in examples if ex.title in dev]


_SENTENCE = re.compile(r"[A-Z][^.!?]{20,400}[.!?]")
_CLAUSE_END = ",;:.!?)"
_TRAILING = ",;:.!?)\"'"


def cloze_questions(examples: Sequence[QAExample], *, n: int, seed: int = 0, min_prefix: int = 5,
                    max_answer: int = 5) -> list[QAExample]:
    """Self-supervised fill-in-the-blank questions from the contexts of ``examples``.

    A sentence of a context is cut after a seeded word (at least ``min_prefix`` words in):
    the words before the cut are the question, the words after it, up to the end of the
    clause (the next comma, semicolon, colon or full stop) and at most ``max_answer`` of
    them, the answer -- a span of the context with its exact offset. This is the shape of
    a test-bank question ("The misery index is calculated as the ...") and teaches an
    extractive reader to find a passage and point after it; built only from the given
    (training) articles, it adds no dev text. Questions are spread over contexts in
    proportion to their sentences; fewer than ``n`` come back when there are not enough
    sentences.
    """
    contexts = list(dict.fromkeys((ex.title, ex.context) for ex in examples))
    sentences: list[tuple[int, list[tuple[int, int]]]] = []  # (context index, word offsets)
    for ci, (_, ctx) in enumerate(contexts):
        for m in _SENTENCE.finditer(ctx):
            words = [(m.start() + w.start(), m.start() + w.end()) for w in re.finditer(r"\S+", m.group())]
            if len(words) >= min_prefix + 2:
                sentences.append((ci, words))
    rng = np.random.default_rng(seed)
    out: list[QAExample] = []
    for i in sorted(rng.choice(len(sentences), size=min(n, len(sentences)), replace=False).tolist()):
        ci, words = sentences[i]
        title, ctx = contexts[ci]
        k = int(rng.integers(min_prefix, len(words) - 1))  # the answer starts at word k
        j = k
        while j < min(len(words), k + max_answer) - 1 and ctx[words[j][1] - 1] not in _CLAUSE_END:
            j += 1
        start, end = words[k][0], words[j][1]
        while end > start and ctx[end - 1] in _TRAILING:
            end -= 1
        if end <= start:
            continue
        question = " ".join(ctx[words[0][0]:start].split())
        out.append(QAExample(id=f"cloze-{len(out)}", question=question, context=ctx, title=title,
                             answers=[{"text": ctx[start:end], "answer_start": start}]))
    return out
