"""Question answering: the official SQuAD v1.1 normalisation, exact match and F1."""

from __future__ import annotations

import re
import string
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gptbert.metrics._common import check_lengths

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def squad_normalize(text: str) -> str:
    """SQuAD answer normalisation: lowercase, drop ASCII punctuation, drop the articles
    a/an/the, collapse whitespace."""
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {type(text).__name__}")
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _as_golds(golds: str | Sequence[str]) -> list[str]:
    if isinstance(golds, str):
        return [golds]
    out = list(golds)
    if not out:
        raise ValueError("need at least one gold answer")
    for g in out:
        if not isinstance(g, str):
            raise TypeError(f"gold answers must be strings, got {type(g).__name__}")
    return out


def _token_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:  # as in the v1.1 script, two empty answers also score 0
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_exact_match(pred: str, golds: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0."""
    p = squad_normalize(pred)
    return float(any(p == squad_normalize(g) for g in _as_golds(golds)))


def squad_f1(pred: str, golds: str | Sequence[str]) -> float:
    """Bag-of-tokens F1 of normalised answers, maximum over the gold answers, in [0, 1]."""
    p = squad_normalize(pred).split()
    return max(_token_f1(p, squad_normalize(g).split()) for g in _as_golds(golds))


def _answer_texts(answers: Any, qid: str) -> list[str]:
    if isinstance(answers, Mapping):  # Hugging Face datasets: {"text": [...], ...}
        texts = list(answers.get("text", []))
    else:
        texts = [a if isinstance(a, str) else a["text"] for a in answers]
    if not texts:
        raise ValueError(f"question {qid!r} has no gold answer (SQuAD v2 is not supported)")
    return texts


def _gold_table(examples: Any) -> list[tuple[str, list[str]]]:
    """(id, gold texts) for each question, from any of the accepted ``examples`` forms."""
    if isinstance(examples, Mapping) and "data" in examples:
        examples = examples["data"]
    if isinstance(examples, Mapping):
        return [(str(qid), _as_golds(golds)) for qid, golds in examples.items()]
    table: list[tuple[str, list[str]]] = []
    for item in examples:
        if "paragraphs" in item:  # an article of the official JSON
            for paragraph in item["paragraphs"]:
                for qa in paragraph["qas"]:
                    table.append((str(qa["id"]), _answer_texts(qa["answers"], qa["id"])))
        else:  # a flat question record
            table.append((str(item["id"]), _answer_texts(item["answers"], item["id"])))
    return table


def squad_scores(predictions: Mapping[str, str], examples: Any) -> dict[str, float]:
    """``{"exact_match", "f1"}`` in percent over all questions, as the SQuAD v1.1 script.

    ``examples``: the official JSON (``{"data": [...]}``) or its ``data`` list, flat records
    ``{"id", "answers"}`` (answers as strings, ``{"text"}`` dicts or a ``{"text": [...]}``
    dict), or a mapping id -> gold texts. Questions without a prediction score 0 (with a
    warning); predictions for unknown ids are ignored.
    """
    table = _gold_table(examples)
    if not table:
        raise ValueError("empty inputs: no questions in examples")
    em = f1 = 0.0
    missing = 0
    for qid, golds in table:
        if qid not in predictions:
            missing += 1
            continue
        pred = predictions[qid]
        em += squad_exact_match(pred, golds)
        f1 += squad_f1(pred, golds)
    if missing:
        warnings.warn(
            f"{missing} of {len(table)} questions have no prediction and score 0", stacklevel=2
        )
    return {"exact_match": 100.0 * em / len(table), "f1": 100.0 * f1 / len(table)}


def _qa_em_per_example(golds: Sequence[Any], preds: Sequence[str]) -> np.ndarray:
    check_lengths(golds, preds, "gold answers")
    return np.array([squad_exact_match(p, g) for g, p in zip(golds, preds)], dtype=np.float64)


def _qa_f1_per_example(golds: Sequence[Any], preds: Sequence[str]) -> np.ndarray:
    check_lengths(golds, preds, "gold answers")
    return np.array([squad_f1(p, g) for g, p in zip(golds, preds)], dtype=np.float64)


def _qa_exact_match(golds: Sequence[Any], preds: Sequence[str]) -> float:
    """Mean exact match in percent; ``golds[i]`` is a string or a list of strings."""
    return float(100.0 * _qa_em_per_example(golds, preds).mean())


def _qa_f1(golds: Sequence[Any], preds: Sequence[str]) -> float:
    """Mean SQuAD F1 in percent; ``golds[i]`` is a string or a list of strings."""
    return float(100.0 * _qa_f1_per_example(golds, preds).mean())
