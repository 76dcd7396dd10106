"""SQuAD files built from SQuAD files: a smaller file for quick runs (each question with a
window of its context), article-wise train / dev splits, and self-supervised cloze questions
from the training articles (``gptbert data squad``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from gptbert.data.readers import QAExample
from gptbert.tasks.qa_features import answer_span, content_words


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
        span = answer_span(ex)
        if span is not None:
            centre = (span[0] + span[1]) // 2
        else:
            q = set(content_words(ex.question))
            step = max(1, chars // 2)
            starts = list(range(0, max(1, len(ctx) - chars + 1), step))
            centre = max(starts, key=lambda s: (len(q & set(content_words(ctx[s:s + chars]))), -s)) + chars // 2
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

