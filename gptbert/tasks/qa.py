"""Question answering: extractive for BERT (and any 'qa' head), generative for GPT.

**Extractive** (Devlin et al. 2019, section 4.2): ``[CLS] question [SEP] context window
[SEP]``; a long context is cut into windows ``doc_stride`` tokens apart
(:func:`gptbert.tasks.qa_features.prepare_qa_features`); the model gives start/end logits
(B, T, 2) and the answer is the best valid span (start <= end, at most
``max_answer_len`` tokens, inside the context) over all windows of a question
(:func:`gptbert.tasks.qa_features.qa_nbest`). Training uses only questions whose answer is a
span of the context: every window that contains the answer, plus a few windows that do
not (target = [CLS]) -- ``negatives_per_positive`` per question, seeded -- because a
SQuAD article here is ~60,000 characters, i.e. hundreds of windows per question.

**Generative** (GPT, Radford et al. 2019 style): the prompt is
``"context: <passage>\\nquestion: <question>\\nanswer:"`` and the model is trained as a
conditional LM with the loss on the answer only
(:class:`gptbert.tasks.generate.ConditionalLMCollator`). A context longer than the model's
window is reduced to the passage (a window of context tokens) that best matches the
question words (IDF-weighted overlap); in training, a window that contains the answer
when the answer is a span of the context. Free-text answers (not spans) are learned as
they are. The answer's start/end are its character offsets in the context when the
generated text occurs there, else -1.

Scores follow SQuAD v1.1: exact match and token F1 after the official normalisation,
in percent, over all questions and over the answerable (span) ones.
"""

from __future__ import annotations

import re
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from gptbert.data.readers import DataWarning, QAExample, SquadData, read_squad, train_dev_split
from gptbert.precision import autocast
from gptbert.tasks.base import Fitting, Task, TaskOptions, TaskSplits, jsonl_records, table_format
from gptbert.tasks.common import (ListDataset, batched_outputs, model_device, plain_ids, run_max_len,
                                  run_tokenizer, text_of)
from gptbert.tasks.generate import ConditionalLMCollator
from gptbert.tasks.qa_features import (
    DOC_STRIDE,
    QACollator,
    answer_span,
    example_field,
    overlap_scores,
    qa_nbest,
    retrieval_recall,
    top_windows_by_overlap,
    train_features,
    windows,
)
from gptbert.tokenizer import Tokenizer

ANSWER_SEPARATOR = " "
"""Between the prompt (ending in 'answer:') and the answer."""
DEFAULT_MAX_NEW_TOKENS = 32


@dataclass
class QAOptions(TaskOptions):
    """How a QA run reads (extractive) or writes (generative) its answers, and what it trained on."""

    mode: str = "extractive"
    """'extractive' (a 'qa' head: the best span) or 'generative' (a GPT 'lm' head)."""
    doc_stride: int = DOC_STRIDE
    negatives_per_positive: int = 2
    """Training windows without the answer per question (extractive)."""
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    """Answer tokens at most (generative)."""
    n_train_questions: int | None = None
    n_train_answerable: int | None = None
    n_train_windows: int | None = None


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


def make_collator(tokenizer: Tokenizer, model_or_config: Any) -> QACollator:
    config = getattr(model_or_config, "config", model_or_config)
    return QACollator(tokenizer, return_token_type_ids=config.family == "bert" and bool(config.type_vocab_size))


def extractive_nbest(
    model: nn.Module, tokenizer: Tokenizer, examples: Sequence[Any], *, max_len: int = 384, doc_stride: int = DOC_STRIDE,
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
        feats = top_windows_by_overlap(feats, {str(example_field(ex, "id")): example_field(ex, "question") for ex in examples}, top_windows)
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


def generative_prompt(tokenizer: Tokenizer, question: str, context: str, *, max_len: int, answer_room: int,
                      answer_span: tuple[int, int] | None = None) -> str:
    """:func:`qa_prompt` with the context reduced to what fits ``max_len - answer_room`` tokens."""
    question = " ".join(question.split())
    overhead = len(plain_ids(tokenizer, qa_prompt("", ""))) + len(plain_ids(tokenizer, ANSWER_SEPARATOR)) + 2
    room = max_len - answer_room - overhead  # question + context
    if room < 16:
        raise ValueError(f"max_len {max_len} leaves {room} tokens for the question and the context after "
                         f"{answer_room} answer tokens; use a longer max_len")
    q_ids = plain_ids(tokenizer, question)
    if len(q_ids) > room // 2:  # a long question keeps its end, next to the answer slot
        question = tokenizer.decode(q_ids[len(q_ids) - room // 2:]).strip()
        q_ids = plain_ids(tokenizer, question)
    budget = max(8, room - len(q_ids))
    # Selected on the original text (offsets stay valid); qa_prompt then collapses whitespace,
    # which never adds tokens.
    return qa_prompt(question, select_passage(question, context, tokenizer, budget, answer_span=answer_span))


def generative_examples(examples: Sequence[QAExample], tokenizer: Tokenizer, *, max_len: int) -> list[tuple[str, str]]:
    """(prompt, answer) pairs for the conditional-LM collator: the first gold answer as target."""
    out = []
    for ex in examples:
        target = gold_answers(ex)[0]
        room = len(plain_ids(tokenizer, target)) + 2
        out.append((generative_prompt(tokenizer, ex.question, ex.context, max_len=max_len, answer_room=room,
                                      answer_span=answer_span(ex)), target))
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
        answer_ids = [plain_ids(tokenizer, t) if t else [] for t in texts]
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
    max_len: int = 384, doc_stride: int = DOC_STRIDE, n_best: int = 20, max_answer_len: int = 30,
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
    doc_stride: int = DOC_STRIDE, n_best: int = 20, max_answer_len: int = 30, batch_size: int = 32,
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
# The task
# ---------------------------------------------------------------------------------------


class QATask(Task):
    """SQuAD-style QA: BERT (and ELMo) extract a span with a 'qa' head, GPT generates the answer."""

    name = "qa"
    options_type = QAOptions
    metric = "f1"
    heads = ("qa",)
    capability = "answer"

    def head(self, family: str) -> str:
        return "lm" if family == "gpt" else "qa"

    def capabilities(self, config: Any, *, tuned: bool) -> set[str]:
        """A 'qa' head answers extractively; a GPT language model answers only once tuned for QA."""
        generative = config.family == "gpt" and config.head == "lm"
        return {"answer"} if tuned and generative else super().capabilities(config, tuned=tuned)

    def load_data(self, train_path: str | Path, dev_path: str | Path | None, options: TaskOptions, *,
                  seed: int = 0, max_train: int | None = None, skip_bad_rows: bool = False) -> TaskSplits:
        data = load_data(train_path, dev_path, seed=seed, max_train=max_train)
        texts = list(dict.fromkeys(e.context for e in data.train)) + [e.question for e in data.train]
        options = replace(options, n_train_questions=len(data.train),
                          n_train_answerable=sum(e.answerable for e in data.train))
        return TaskSplits(data.train, data.dev, texts, options, None, data)

    def tokenizer_texts(self, data: TaskSplits, family: str) -> list[str]:
        """Contexts and questions, and for GPT (which writes them) the answers."""
        answers = [gold_answers(e)[0] for e in data.train] if family == "gpt" else []
        return list(data.texts) + answers

    def collator(self, tokenizer: Tokenizer, config: Any, max_len: int, options: TaskOptions) -> Any:
        if config.family == "gpt" and config.head == "lm":
            return make_lm_collator(tokenizer, max_len)
        return make_collator(tokenizer, config)

    def fitting(self, model: nn.Module, tokenizer: Tokenizer, data: TaskSplits, *, max_len: int,
                precision: str = "fp32", seed: int = 0) -> Fitting:
        """GPT: a conditional LM on (prompt, answer), early-stopped on dev loss, scored at the end.
        Others: the windows of the answerable questions, early-stopped on dev F1."""
        options = data.options
        assert isinstance(options, QAOptions)
        collate = self.collator(tokenizer, model.config, max_len, options)  # type: ignore[arg-type]
        if is_generative(model):
            options = replace(options, mode="generative", max_new_tokens=DEFAULT_MAX_NEW_TOKENS)
            train = generative_examples(data.train, tokenizer, max_len=max_len)
            dev = generative_examples(data.dev, tokenizer, max_len=max_len)
            return Fitting(ListDataset(train), collate,
                           lambda m: evaluate(m, tokenizer, data.dev, max_len=max_len, precision=precision),
                           "loss", options, dev_data=ListDataset(dev))
        _check_extractive(model)
        feats = train_features(data.train, tokenizer, max_len=max_len, doc_stride=options.doc_stride,
                               negatives_per_positive=options.negatives_per_positive, seed=seed)
        options = replace(options, mode="extractive", n_train_windows=len(feats))
        stride = options.doc_stride
        return Fitting(ListDataset(feats), collate,
                       lambda m: evaluate(m, tokenizer, data.dev, max_len=max_len, doc_stride=stride,
                                          precision=precision),
                       self.metric, options)

    def evaluate(self, model: nn.Module, tokenizer: Tokenizer, examples: Sequence[Any], options: TaskOptions, *,
                 labels: Sequence[str] | None = None, max_len: int = 384, precision: str = "fp32",
                 batch_size: int = 32, **opts: Any) -> dict[str, Any]:
        """SQuAD EM / F1; ``opts``: ``doc_stride``, ``max_new_tokens``, ``top_windows``."""
        assert isinstance(options, QAOptions)
        return evaluate(model, tokenizer, examples, max_len=max_len, batch_size=batch_size, precision=precision,
                        doc_stride=int(opts.get("doc_stride") or options.doc_stride),
                        max_new_tokens=int(opts.get("max_new_tokens") or options.max_new_tokens),
                        top_windows=opts.get("top_windows"))

    def read_examples(self, path: str | Path, options: TaskOptions, *, labels: Sequence[str] | None = None,
                      skip_bad_rows: bool = False) -> list[Any]:
        return list(read_questions(path))

    def bootstrap_pairs(self, result: dict[str, Any], data: TaskSplits) -> tuple[list[Any], list[Any]] | None:
        preds = result.get("predictions")
        return ([p["gold"] for p in preds], [p["prediction"] for p in preds]) if preds else None

    def inputs(self, examples: Sequence[Any]) -> list[Any]:
        return [{"question": e.question, "context": e.context} for e in examples]

    def predict(self, run: Any, inputs: list[Any], **opts: Any) -> list[dict[str, Any]]:
        """``{"question", "context"}`` (or (question, context) pairs) -> answer, score, start, end."""
        qs, cs = [], []
        for x in inputs:
            if isinstance(x, dict):
                qs.append(text_of(x, "question"))
                cs.append(text_of(x, "context"))
            elif isinstance(x, (list, tuple)) and len(x) == 2:
                qs.append(x[0])
                cs.append(x[1])
            else:
                raise ValueError(f"qa input {x!r}: expected {{'question', 'context'}} or (question, context)")
        options = self.options_of(run)
        assert isinstance(options, QAOptions)
        res = answer(run.model, run_tokenizer(run), qs, cs, max_len=run_max_len(run),
                     precision=opts.get("precision", "fp32"),
                     doc_stride=int(opts.get("doc_stride", options.doc_stride)),
                     max_new_tokens=int(opts.get("max_new_tokens") or options.max_new_tokens),
                     top_windows=opts.get("top_windows"))
        return [{"question": q, **{k: v for k, v in r.items() if k != "n_best"}} for q, r in zip(qs, res)]

    def read_inputs(self, path: Path, columns: Mapping[str, str | None] | None = None,
                    options: TaskOptions | None = None) -> list[Any]:
        """SQuAD .json, .jsonl records with question and context, or a table in any other format of
        the reader registry (CSV, TSV, Parquet, a datasets folder) with question and context columns."""
        from gptbert.data.readers.registry import read_rows

        fmt = table_format(path)
        if fmt == "json":
            return [{"question": e.question, "context": e.context} for e in read_questions(path)]
        if fmt == "jsonl":
            records = jsonl_records(path)
            for i, r in enumerate(records):
                if not isinstance(r, dict) or "question" not in r or "context" not in r:
                    raise ValueError(f"{path}: record {i + 1}: expected keys 'question' and 'context'")
            return records
        if fmt is None:
            raise ValueError(f"{path}: qa inputs are SQuAD .json, .jsonl with question/context, or a CSV / TSV / "
                             "Parquet / datasets table with question and context columns")
        roles = {"question": "question", "context": "context"}
        _, rows = read_rows(path, dict(roles), list(roles), roles, format=None, has_header=True, encoding="utf-8",
                            skip_bad_rows=False)
        return [{"question": v["question"], "context": v["context"]} for v in rows.values]
