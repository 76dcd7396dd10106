"""The metric table: name -> a function returning one float, and which way is better."""

from __future__ import annotations

from collections.abc import Callable

from gptbert.metrics.classification import _micro_f1, _weighted_f1, accuracy, macro_f1, mcc
from gptbert.metrics.generation import _bleu_metric, _chrf_metric, _rouge1, _rouge2, _rougeL
from gptbert.metrics.language import bits_per_character, bits_per_token, perplexity
from gptbert.metrics.squad import _qa_exact_match, _qa_f1
from gptbert.metrics.tagging import _entity_f1

METRICS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "macro_f1": macro_f1,
    "micro_f1": _micro_f1,
    "weighted_f1": _weighted_f1,
    "mcc": mcc,
    "entity_f1": _entity_f1,
    "exact_match": _qa_exact_match,
    "f1": _qa_f1,
    "rouge1": _rouge1,
    "rouge2": _rouge2,
    "rougeL": _rougeL,
    "bleu": _bleu_metric,
    "chrf": _chrf_metric,
    "perplexity": perplexity,
    "bits_per_character": bits_per_character,
    "bits_per_token": bits_per_token,
}
"""Name -> metric returning one float; non-LM entries are called as ``fn(y_true, y_pred)``."""

_LOWER_IS_BETTER = frozenset({"perplexity", "bits_per_character", "bits_per_token"})


def higher_is_better(name: str) -> bool:
    """Whether a larger value of the named metric (a ``METRICS`` key) is better."""
    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}")
    return name not in _LOWER_IS_BETTER
