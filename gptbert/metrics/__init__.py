"""Evaluation metrics: classification, language modelling, QA, generation, tagging.

Every function is pure and deterministic and returns plain Python ``float``/``dict``
values (``confusion_matrix`` returns an integer ``numpy`` array). Scales follow each
field's convention:

* classification, entity F1, per-example SQuAD scores: fractions in ``[0, 1]``;
* ``squad_scores``, ROUGE, BLEU, chrF: percentages in ``[0, 100]``, as the official
  scripts report them.

Importing this package needs only numpy: ``rouge-score``, ``sacrebleu`` and ``seqeval``
are imported inside the functions that use them (``pip install 'gptbert[metrics]'``),
and torch is never imported (tensors on the CPU are accepted wherever arrays are).

``METRICS`` maps a metric name to a callable returning one float. Except for the
language-modelling entries (``perplexity``, ``bits_per_character``, ``bits_per_token``,
which take the numbers documented on those functions), each entry is called as
``fn(y_true, y_pred)`` -- references first, predictions second -- which is also how
``bootstrap_ci`` calls its ``metric_fn``.
"""

from __future__ import annotations

from gptbert.metrics.bootstrap import bootstrap_ci
from gptbert.metrics.calibration import brier_score, expected_calibration_error, fit_temperature, reliability_bins
from gptbert.metrics.classification import accuracy, classification_report, confusion_matrix, macro_f1, mcc
from gptbert.metrics.generation import bleu, chrf, generation_scores, rouge
from gptbert.metrics.language import bits_per_character, bits_per_token, perplexity
from gptbert.metrics.registry import METRICS, higher_is_better
from gptbert.metrics.squad import squad_exact_match, squad_f1, squad_normalize, squad_scores
from gptbert.metrics.tagging import entity_f1, extract_entities

__all__ = [
    "METRICS",
    "accuracy",
    "bits_per_character",
    "bits_per_token",
    "bleu",
    "bootstrap_ci",
    "brier_score",
    "chrf",
    "classification_report",
    "confusion_matrix",
    "entity_f1",
    "expected_calibration_error",
    "extract_entities",
    "fit_temperature",
    "generation_scores",
    "higher_is_better",
    "macro_f1",
    "mcc",
    "perplexity",
    "reliability_bins",
    "rouge",
    "squad_exact_match",
    "squad_f1",
    "squad_normalize",
    "squad_scores",
]
