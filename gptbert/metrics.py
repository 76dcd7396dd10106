"""Evaluation metrics: classification, language modelling, QA, generation, tagging.

Every function is pure and deterministic and returns plain Python ``float``/``dict``
values (``confusion_matrix`` returns an integer ``numpy`` array). Scales follow each
field's convention:

* classification, entity F1, per-example SQuAD scores: fractions in ``[0, 1]``;
* ``squad_scores``, ROUGE, BLEU, chrF: percentages in ``[0, 100]``, as the official
  scripts report them.

Importing this module needs only numpy: ``rouge-score``, ``sacrebleu`` and ``seqeval``
are imported inside the functions that use them (``pip install 'gptbert[metrics]'``),
and torch is never imported (tensors on the CPU are accepted wherever arrays are).

``METRICS`` maps a metric name to a callable returning one float. Except for the
language-modelling entries (``perplexity``, ``bits_per_character``, ``bits_per_token``,
which take the numbers documented on those functions), each entry is called as
``fn(y_true, y_pred)`` -- references first, predictions second -- which is also how
``bootstrap_ci`` calls its ``metric_fn``.
"""

from __future__ import annotations

import importlib
import math
import re
import string
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, Literal

import numpy as np

__all__ = [
    "METRICS",
    "accuracy",
    "bits_per_character",
    "bits_per_token",
    "bleu",
    "bootstrap_ci",
    "chrf",
    "classification_report",
    "confusion_matrix",
    "entity_f1",
    "extract_entities",
    "generation_scores",
    "higher_is_better",
    "macro_f1",
    "mcc",
    "perplexity",
    "rouge",
    "squad_exact_match",
    "squad_f1",
    "squad_normalize",
    "squad_scores",
]

Average = Literal["macro", "micro", "weighted"]
EntityMode = Literal["default", "strict"]
Entity = tuple[str, int, int]

_INSTALL_HINT = "pip install 'gptbert[metrics]'"


def _require(module: str, package: str, caller: str) -> ModuleType:
    """Import an optional dependency, or fail with a message naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"gptbert.metrics.{caller} needs the optional package {package!r}; "
            f"install the metrics extra: {_INSTALL_HINT}"
        ) from exc


# --------------------------------------------------------------------------- classification


def _as_1d(values: Any, name: str) -> np.ndarray:
    if isinstance(values, str):
        raise TypeError(f"{name} must be a sequence of labels, not a single string")
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = _as_1d(y_true, "y_true")
    p = _as_1d(y_pred, "y_pred")
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"length mismatch: {t.shape[0]} true labels vs {p.shape[0]} predictions")
    if t.shape[0] == 0:
        raise ValueError("empty inputs: need at least one example")
    return t, p


def _to_int_labels(arr: np.ndarray, name: str) -> np.ndarray | None:
    """Integer view of ``arr`` if it holds integer labels (bool/int/integral float), else None."""
    kind = arr.dtype.kind
    if kind in "biu":
        return arr.astype(np.int64)
    if kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} holds non-integral floats; labels must be integers")
        return arr.astype(np.int64)
    return None


def _encode(
    y_true: Any, y_pred: Any, num_labels: int | None
) -> tuple[np.ndarray, np.ndarray, int, list[Any]]:
    """Validate a label pair and map it to ``0..K-1``; also return K and the label values.

    Integer labels are used as indices (K = ``num_labels`` or the largest label + 1);
    any other hashable labels (e.g. strings) are indexed in sorted order.
    """
    t, p = _check_pair(y_true, y_pred)
    ti, pi = _to_int_labels(t, "y_true"), _to_int_labels(p, "y_pred")
    if ti is not None and pi is not None:
        low = int(min(ti.min(), pi.min()))
        high = int(max(ti.max(), pi.max()))
        if low < 0:
            raise ValueError(f"labels must be non-negative integers, got {low}")
        if num_labels is not None:
            if num_labels < 1:
                raise ValueError(f"num_labels must be >= 1, got {num_labels}")
            if high >= num_labels:
                raise ValueError(f"label {high} out of range for num_labels={num_labels}")
            k = int(num_labels)
        else:
            k = high + 1
        return ti, pi, k, list(range(k))
    if num_labels is not None:
        raise ValueError("num_labels applies to integer labels only")
    try:
        names = sorted(set(t.tolist()) | set(p.tolist()))
    except TypeError as exc:
        raise TypeError("labels must be integers or mutually comparable values") from exc
    index = {name: i for i, name in enumerate(names)}
    ti = np.fromiter((index[x] for x in t.tolist()), dtype=np.int64, count=t.shape[0])
    pi = np.fromiter((index[x] for x in p.tolist()), dtype=np.int64, count=p.shape[0])
    return ti, pi, len(names), names


def _cm_from_codes(t: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def _accuracy_cm(cm: np.ndarray) -> np.ndarray:
    return np.trace(cm, axis1=-2, axis2=-1) / cm.sum(axis=(-2, -1))


def _prf_cm(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1, support and predicted counts of (..., K, K) matrices.

    0/0 is taken as 0 (a class never predicted has precision 0, never seen recall 0).
    """
    cm = cm.astype(np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(axis=-1)
    predicted = cm.sum(axis=-2)
    zeros = np.zeros_like(tp)
    precision = np.divide(tp, predicted, out=zeros.copy(), where=predicted > 0)
    recall = np.divide(tp, support, out=zeros.copy(), where=support > 0)
    both = support + predicted
    f1 = np.divide(2.0 * tp, both, out=zeros.copy(), where=both > 0)
    return precision, recall, f1, support, predicted


def _f1_cm(cm: np.ndarray, average: str, all_classes: bool) -> np.ndarray:
    _, _, f1, support, predicted = _prf_cm(cm)
    if average == "micro":
        # Single-label multi-class: micro precision = micro recall = micro F1 = accuracy.
        return _accuracy_cm(cm)
    if average == "weighted":
        return (f1 * support).sum(axis=-1) / support.sum(axis=-1)
    if average == "macro":
        mask = np.ones_like(f1, dtype=bool) if all_classes else (support + predicted) > 0
        return (f1 * mask).sum(axis=-1) / mask.sum(axis=-1)
    raise ValueError(f"average must be 'macro', 'micro' or 'weighted', got {average!r}")


def _mcc_cm(cm: np.ndarray) -> np.ndarray:
    cm = cm.astype(np.float64)
    s = cm.sum(axis=(-2, -1))
    c = np.trace(cm, axis1=-2, axis2=-1)
    t = cm.sum(axis=-1)
    p = cm.sum(axis=-2)
    num = c * s - (t * p).sum(axis=-1)
    den = np.sqrt((s * s - (p * p).sum(axis=-1)) * (s * s - (t * t).sum(axis=-1)))
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def confusion_matrix(y_true: Any, y_pred: Any, num_labels: int | None = None) -> np.ndarray:
    """Counts ``cm[i, j]`` of examples with true label i predicted as j, shape (K, K), int64.

    Integer labels index the matrix directly (K = ``num_labels``, default largest label + 1);
    other labels (strings) are ordered by ``sorted``.
    """
    t, p, k, _ = _encode(y_true, y_pred, num_labels)
    return _cm_from_codes(t, p, k)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of examples whose prediction equals the label."""
    t, p = _check_pair(y_true, y_pred)
    return float(np.mean(t == p))


def macro_f1(
    y_true: Any, y_pred: Any, average: Average = "macro", num_labels: int | None = None
) -> float:
    """F1 averaged over classes.

    ``average``: ``"macro"`` (unweighted mean of per-class F1), ``"weighted"`` (weighted by
    support) or ``"micro"`` (pooled counts; equals accuracy for single-label data). Macro
    averages over the classes present in ``y_true`` or ``y_pred``, or over all
    ``num_labels`` classes when that is given (absent classes then count as F1 = 0).
    """
    t, p, k, _ = _encode(y_true, y_pred, num_labels)
    return float(_f1_cm(_cm_from_codes(t, p, k), average, all_classes=num_labels is not None))


def mcc(y_true: Any, y_pred: Any) -> float:
    """Matthews correlation coefficient, multi-class (Gorodkin's R_K), in [-1, 1].

    ``(c*s - sum_k t_k p_k) / sqrt((s^2 - sum_k p_k^2) (s^2 - sum_k t_k^2))`` with s
    examples, c correct, t_k true and p_k predicted counts of class k; 0.0 when the
    denominator is 0 (only one class in ``y_true`` or in ``y_pred``).
    """
    t, p, k, _ = _encode(y_true, y_pred, None)
    return float(_mcc_cm(_cm_from_codes(t, p, k)))


def classification_report(
    y_true: Any,
    y_pred: Any,
    num_labels: int | None = None,
    target_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Per-class ``{"precision", "recall", "f1", "support"}`` plus summary entries.

    Keys are ``target_names[i]`` (or ``str(label)``) for each class, then ``"accuracy"``
    (a float), ``"macro avg"`` and ``"weighted avg"`` (dicts like the per-class ones,
    ``support`` being the number of examples). Classes listed: all ``num_labels`` when
    given, else those present in ``y_true`` or ``y_pred``; macro averages over them.
    """
    t, p, k, names = _encode(y_true, y_pred, num_labels)
    cm = _cm_from_codes(t, p, k)
    precision, recall, f1, support, predicted = _prf_cm(cm)
    if num_labels is not None:
        classes = list(range(k))
    else:
        classes = [i for i in range(k) if support[i] + predicted[i] > 0]
    if target_names is not None:
        if isinstance(target_names, str) or len(target_names) != k:
            raise ValueError(f"target_names must list {k} names, one per label")
        labels = [str(target_names[i]) for i in range(k)]
    else:
        labels = [str(name) for name in names]
    if len(set(labels[i] for i in classes)) != len(classes):
        raise ValueError("class names must be distinct")
    report: dict[str, Any] = {}
    for i in classes:
        report[labels[i]] = {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
    n = int(cm.sum())
    idx = np.asarray(classes, dtype=np.int64)
    report["accuracy"] = float(_accuracy_cm(cm))
    report["macro avg"] = {
        "precision": float(precision[idx].mean()),
        "recall": float(recall[idx].mean()),
        "f1": float(f1[idx].mean()),
        "support": n,
    }
    weights = support / n
    report["weighted avg"] = {
        "precision": float((precision * weights).sum()),
        "recall": float((recall * weights).sum()),
        "f1": float((f1 * weights).sum()),
        "support": n,
    }
    return report


# --------------------------------------------------------------------------- language modelling


def _finite_nonneg(value: float, name: str) -> float:
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"{name} is NaN")
    if v < 0:
        raise ValueError(f"{name} must be >= 0 (a negative log-likelihood), got {v}")
    return v


def perplexity(mean_nll: float) -> float:
    """``exp(mean_nll)`` for a mean negative log-likelihood in nats per token (inf on overflow)."""
    v = _finite_nonneg(mean_nll, "mean_nll")
    try:
        return math.exp(v)
    except OverflowError:
        return math.inf


def _bits(total_nll_nats: float, count: int, name: str) -> float:
    v = _finite_nonneg(total_nll_nats, "total_nll_nats")
    if isinstance(count, bool) or int(count) != count or count <= 0:
        raise ValueError(f"{name} must be a positive integer, got {count!r}")
    return v / (int(count) * math.log(2.0))


def bits_per_character(total_nll_nats: float, n_chars: int) -> float:
    """Summed NLL (nats) over a text, converted to bits and divided by its character count."""
    return _bits(total_nll_nats, n_chars, "n_chars")


def bits_per_token(total_nll_nats: float, n_tokens: int) -> float:
    """Summed NLL (nats) converted to bits per token (``log2`` of the perplexity)."""
    return _bits(total_nll_nats, n_tokens, "n_tokens")


# --------------------------------------------------------------------------- question answering

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
    _check_lengths(golds, preds, "gold answers")
    return np.array([squad_exact_match(p, g) for g, p in zip(golds, preds)], dtype=np.float64)


def _qa_f1_per_example(golds: Sequence[Any], preds: Sequence[str]) -> np.ndarray:
    _check_lengths(golds, preds, "gold answers")
    return np.array([squad_f1(p, g) for g, p in zip(golds, preds)], dtype=np.float64)


def _qa_exact_match(golds: Sequence[Any], preds: Sequence[str]) -> float:
    """Mean exact match in percent; ``golds[i]`` is a string or a list of strings."""
    return float(100.0 * _qa_em_per_example(golds, preds).mean())


def _qa_f1(golds: Sequence[Any], preds: Sequence[str]) -> float:
    """Mean SQuAD F1 in percent; ``golds[i]`` is a string or a list of strings."""
    return float(100.0 * _qa_f1_per_example(golds, preds).mean())


# --------------------------------------------------------------------------- generation


def _check_lengths(refs: Sequence[Any], preds: Sequence[Any], what: str) -> None:
    if isinstance(preds, str) or isinstance(refs, str):
        raise TypeError("pass lists of strings, not a single string")
    if len(preds) != len(refs):
        raise ValueError(f"length mismatch: {len(preds)} predictions vs {len(refs)} {what}")
    if len(preds) == 0:
        raise ValueError("empty inputs: need at least one example")


def _prepare_generation(
    preds: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]
) -> tuple[list[str], list[list[str]]]:
    _check_lengths(refs, preds, "references")
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
    rouge_scorer = _require("rouge_score.rouge_scorer", "rouge-score", "rouge")
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
    sacrebleu = _require("sacrebleu", "sacrebleu", "bleu")
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
    sacrebleu = _require("sacrebleu", "sacrebleu", "chrf")
    hyps, ref_lists = _prepare_generation(preds, refs)
    metric = sacrebleu.metrics.CHRF(word_order=word_order)
    return float(metric.corpus_score(hyps, _ref_streams(ref_lists)).score)


def generation_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """ROUGE-1/2/L, BLEU and chrF of generated texts against their references, in percent."""
    r = rouge(predictions, references)
    return {"rouge1": r["rouge1"], "rouge2": r["rouge2"], "rougeL": r["rougeL"],
            "bleu": bleu(predictions, references), "chrf": chrf(predictions, references)}


# --------------------------------------------------------------------------- token classification


def _split_tag(tag: Any) -> tuple[str, str]:
    """("B"|"I"|"O", type) of a BIO tag; raises on anything else."""
    if not isinstance(tag, str):
        raise TypeError(f"tags must be strings, got {type(tag).__name__}")
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if prefix not in ("B", "I") or not sep or not kind:
        raise ValueError(f"not a BIO tag: {tag!r} (expected 'O', 'B-TYPE' or 'I-TYPE')")
    return prefix, kind


def extract_entities(tags: Sequence[str], mode: EntityMode = "default") -> list[Entity]:
    """Entities of one BIO-tagged sequence as ``(type, start, end)``, ``end`` exclusive.

    ``mode="default"`` follows conlleval (IOB1 and IOB2 alike): an ``I-X`` that does not
    continue an ``X`` entity starts a new one. ``mode="strict"`` (IOB2): entities start
    only at ``B-X`` and continue over ``I-X``; a stray ``I-X`` belongs to no entity.
    """
    if mode not in ("default", "strict"):
        raise ValueError(f"mode must be 'default' or 'strict', got {mode!r}")
    if isinstance(tags, str):
        raise TypeError("tags must be a sequence of tag strings, not one string")
    entities: list[Entity] = []
    current: tuple[str, int] | None = None  # (type, start) of the open entity
    for i, tag in enumerate(tags):
        prefix, kind = _split_tag(tag)
        if prefix == "I" and current is not None and current[0] == kind:
            continue  # the open entity goes on
        if current is not None:
            entities.append((current[0], current[1], i))
            current = None
        if prefix == "B" or (prefix == "I" and mode == "default"):
            current = (kind, i)
    if current is not None:
        entities.append((current[0], current[1], len(tags)))
    return entities


def entity_f1(
    true_tag_seqs: Sequence[Sequence[str]],
    pred_tag_seqs: Sequence[Sequence[str]],
    mode: EntityMode = "default",
) -> dict[str, float]:
    """Entity-level micro ``{"precision", "recall", "f1"}`` (fractions) with ``seqeval``.

    An entity counts only if type and both boundaries match. ``mode="default"`` is
    seqeval's conlleval-compatible mode; ``"strict"`` is its strict IOB2 mode. With no
    predicted (or no true) entities the corresponding ratio is 0.0.
    """
    if mode not in ("default", "strict"):
        raise ValueError(f"mode must be 'default' or 'strict', got {mode!r}")
    _check_lengths(true_tag_seqs, pred_tag_seqs, "true tag sequences")
    y_true = [list(s) for s in true_tag_seqs]
    y_pred = [list(s) for s in pred_tag_seqs]
    for i, (t, p) in enumerate(zip(y_true, y_pred)):
        if len(t) != len(p):
            raise ValueError(f"sequence {i}: {len(t)} true tags vs {len(p)} predicted tags")
        for tag in (*t, *p):
            _split_tag(tag)
    seqeval_metrics = _require("seqeval.metrics", "seqeval", "entity_f1")
    kwargs: dict[str, Any] = {"average": "micro", "zero_division": 0}
    if mode == "strict":
        kwargs.update(mode="strict", scheme=_require("seqeval.scheme", "seqeval", "entity_f1").IOB2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "precision": float(seqeval_metrics.precision_score(y_true, y_pred, **kwargs)),
            "recall": float(seqeval_metrics.recall_score(y_true, y_pred, **kwargs)),
            "f1": float(seqeval_metrics.f1_score(y_true, y_pred, **kwargs)),
        }


# --------------------------------------------------------------------------- registry


def _micro_f1(y_true: Any, y_pred: Any) -> float:
    return macro_f1(y_true, y_pred, average="micro")


def _weighted_f1(y_true: Any, y_pred: Any) -> float:
    return macro_f1(y_true, y_pred, average="weighted")


def _entity_f1(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> float:
    return entity_f1(y_true, y_pred)["f1"]


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


# --------------------------------------------------------------------------- bootstrap

# Metrics computed from a confusion matrix: resampled matrices are built in one bincount.
_CM_FAST: dict[Callable[..., float], Callable[[np.ndarray], np.ndarray]] = {
    accuracy: _accuracy_cm,
    macro_f1: lambda cm: _f1_cm(cm, "macro", all_classes=False),
    _micro_f1: lambda cm: _f1_cm(cm, "micro", all_classes=False),
    _weighted_f1: lambda cm: _f1_cm(cm, "weighted", all_classes=False),
    mcc: _mcc_cm,
}

# Metrics that are a scaled mean of per-example scores.
_MEAN_FAST: dict[Callable[..., float], tuple[Callable[[Any, Any], np.ndarray], float]] = {
    _qa_exact_match: (_qa_em_per_example, 100.0),
    _qa_f1: (_qa_f1_per_example, 100.0),
    _rouge1: (lambda r, p: _rouge_per_example(p, r)["rouge1"], 100.0),
    _rouge2: (lambda r, p: _rouge_per_example(p, r)["rouge2"], 100.0),
    _rougeL: (lambda r, p: _rouge_per_example(p, r)["rougeL"], 100.0),
}

_CHUNK_ELEMENTS = 4_000_000


def _take(values: Any, idx: np.ndarray) -> Any:
    if isinstance(values, np.ndarray):
        return values[idx]
    seq = values if isinstance(values, list) else list(values)
    return [seq[i] for i in idx.tolist()]


def bootstrap_ci(
    metric_fn: Callable[[Any, Any], float] | str,
    y_true: Any,
    y_pred: Any,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(point, low, high)``: the metric on all data and a percentile bootstrap interval.

    Examples are resampled with replacement, keeping each (true, predicted) pair together;
    the interval holds the central ``1 - alpha`` of the resampled metric values.
    ``metric_fn`` is called as ``metric_fn(y_true, y_pred)``; pass a ``METRICS`` callable
    or name. Accuracy, the F1 averages and MCC are vectorised over resamples, and SQuAD
    EM/F1 and ROUGE are scored once per example; other callables are re-run on each
    resample. The same ``seed`` gives the same resamples on every path.
    """
    if isinstance(metric_fn, str):
        if metric_fn not in METRICS:
            raise KeyError(f"unknown metric {metric_fn!r}; known: {', '.join(sorted(METRICS))}")
        metric_fn = METRICS[metric_fn]
    if isinstance(n_resamples, bool) or int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if isinstance(y_true, str) or isinstance(y_pred, str):
        raise TypeError("y_true and y_pred must be sequences, not single strings")
    n = len(y_true)
    if n != len(y_pred):
        raise ValueError(f"length mismatch: {n} true values vs {len(y_pred)} predictions")
    if n == 0:
        raise ValueError("empty inputs: need at least one example")
    n_resamples = int(n_resamples)

    point = float(metric_fn(y_true, y_pred))
    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples, dtype=np.float64)
    chunk = max(1, _CHUNK_ELEMENTS // n)

    cm_fn = _CM_FAST.get(metric_fn)
    mean_fn = _MEAN_FAST.get(metric_fn)
    if cm_fn is not None:
        t, p, k, _ = _encode(y_true, y_pred, None)
        codes = t * k + p
        for start in range(0, n_resamples, chunk):
            b = min(chunk, n_resamples - start)
            idx = rng.integers(0, n, size=(b, n))
            flat = codes[idx] + (np.arange(b, dtype=np.int64) * (k * k))[:, None]
            cms = np.bincount(flat.ravel(), minlength=b * k * k).reshape(b, k, k)
            values[start : start + b] = cm_fn(cms)
    elif mean_fn is not None:
        per_example, scale = mean_fn
        scores = per_example(y_true, y_pred)
        for start in range(0, n_resamples, chunk):
            b = min(chunk, n_resamples - start)
            idx = rng.integers(0, n, size=(b, n))
            values[start : start + b] = scale * scores[idx].mean(axis=1)
    else:
        for r in range(n_resamples):
            idx = rng.integers(0, n, size=n)
            values[r] = float(metric_fn(_take(y_true, idx), _take(y_pred, idx)))

    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return point, float(low), float(high)

