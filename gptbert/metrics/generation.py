"""Generation metrics: ROUGE-1/2/L (rouge-score), BLEU and chrF (sacrebleu), as the official tools report them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gptbert.metrics._common import check_lengths, require

def _prepare_generation(
    preds: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]
) -> tuple[list[str], list[list[str]]]:
    check_lengths(refs, preds, "references")
    hyps = list(preds)
    for h in hyps:
        if not isinstance(h, str):
            raise TypeError(f"predictions must be strings, got {type(h).__name__}")
    ref_lists: list[list[str]] = []
    for i, r in enumerate(refs):
        group = [r] if isinstance(r, str) else list(r)
        if not group:
            raise ValueError(f"prediction {i} has no reference")
        for x in group:
            if not isinstance(x, str):
                raise TypeError(f"references must be strings, got {type(x).__name__}")
        ref_lists.append(group)
    return hyps, ref_lists


_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def _rouge_per_example(
    preds: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]
) -> dict[str, np.ndarray]:
    rouge_scorer = require("rouge_score.rouge_scorer", "rouge-score", "rouge")
    hyps, ref_lists = _prepare_generation(preds, refs)
    scorer = rouge_scorer.RougeScorer(list(_ROUGE_TYPES), use_stemmer=True)
    out = {name: np.empty(len(hyps), dtype=np.float64) for name in _ROUGE_TYPES}
    for i, (h, group) in enumerate(zip(hyps, ref_lists)):
        # With several references, the best F-measure per ROUGE type counts.
        scores = [scorer.score(r, h) for r in group]
        for name in _ROUGE_TYPES:
            out[name][i] = max(s[name].fmeasure for s in scores)
    return out


def rouge(
    preds: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]
) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure in percent (``rouge-score``, Porter stemming on).

    ``refs[i]`` is one reference string or a list of them (the best one counts). Note the
    ``rouge-score`` tokenizer keeps only ASCII letters and digits.
    """
    per = _rouge_per_example(preds, refs)
    return {name: float(100.0 * per[name].mean()) for name in _ROUGE_TYPES}


def _ref_streams(ref_lists: list[list[str]]) -> list[list[str | None]]:
    """sacrebleu wants one stream per reference slot; None marks a missing reference."""
    width = max(len(g) for g in ref_lists)
    return [[g[j] if j < len(g) else None for g in ref_lists] for j in range(width)]


def bleu(
    preds: Sequence[str],
    refs: Sequence[str] | Sequence[Sequence[str]],
    *,
    tokenize: str = "13a",
    lowercase: bool = False,
) -> float:
    """Corpus BLEU (``sacrebleu``, default settings) in percent; ``refs[i]`` one or several."""
    sacrebleu = require("sacrebleu", "sacrebleu", "bleu")
    hyps, ref_lists = _prepare_generation(preds, refs)
    metric = sacrebleu.metrics.BLEU(tokenize=tokenize, lowercase=lowercase)
    return float(metric.corpus_score(hyps, _ref_streams(ref_lists)).score)


def chrf(
    preds: Sequence[str],
    refs: Sequence[str] | Sequence[Sequence[str]],
    *,
    word_order: int = 0,
) -> float:
    """Corpus chrF (``sacrebleu``; ``word_order=2`` gives chrF++) in percent."""
    sacrebleu = require("sacrebleu", "sacrebleu", "chrf")
    hyps, ref_lists = _prepare_generation(preds, refs)
    metric = sacrebleu.metrics.CHRF(word_order=word_order)
    return float(metric.corpus_score(hyps, _ref_streams(ref_lists)).score)


def generation_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """ROUGE-1/2/L, BLEU and chrF of generated texts against their references, in percent."""
    r = rouge(predictions, references)
    return {"rouge1": r["rouge1"], "rouge2": r["rouge2"], "rougeL": r["rougeL"],
            "bleu": bleu(predictions, references), "chrf": chrf(predictions, references)}




def _rouge_metric(name: str) -> Callable[[Any, Sequence[str]], float]:
    def fn(refs: Any, preds: Sequence[str]) -> float:
        return float(100.0 * _rouge_per_example(preds, refs)[name].mean())

    fn.__name__ = f"_{name}"
    fn.__doc__ = f"Mean {name} F-measure in percent, called as fn(refs, preds)."
    return fn


def _bleu_metric(refs: Any, preds: Sequence[str]) -> float:
    return bleu(preds, refs)


def _chrf_metric(refs: Any, preds: Sequence[str]) -> float:
    return chrf(preds, refs)


_rouge1, _rouge2, _rougeL = (_rouge_metric(n) for n in _ROUGE_TYPES)
