"""Everything the report knows about ``CandidateResult.extra``: the one module to change when
``extra`` gives way to typed fields.

``gptbert compare`` files its per-candidate details under string keys (``recipe``, ``tokenizer``,
``init``, ``architecture``, ``inference``, ``dev_accuracy_by_precision``, ...). Here they are
read into readable rows, grouped (:data:`GROUPS`), with numbers written for people; keys the
report does not know go to an "Other" group, formatted the same way, and keys in
:data:`HIDDEN` (and any starting with ``_``) are not shown. Learning-curve and reliability
data, when a candidate carries them, are read into :mod:`gptbert.report.series` types.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

from gptbert.report.format import MISSING, fmt_duration, fmt_interval, fmt_mb, fmt_number, fmt_value
from gptbert.report.series import LearningCurvePoint, ReliabilityBin
from gptbert.results import CandidateResult, Comparison

__all__ = ["GROUPS", "HIDDEN", "extra_rows", "humanize", "inference_error_precisions", "learning_curve_points",
           "overrides_text", "precision_notes", "reliability_bins", "value_text"]

GROUPS = ("Quality", "Model", "Training", "Inference", "Other")
"""Groups of a candidate's section, in the order shown."""

LEARNING_CURVE_KEY = "learning_curve"
"""extra[...]: a list of {train_size, quality, ci or low/high, per_class, train_s} (issue #18 item 1)."""
RELIABILITY_KEY = "reliability"
"""extra[...]: {"raw": [bins], "calibrated": [bins]} with bins {lower, upper, confidence, accuracy, count}."""

HIDDEN = frozenset({LEARNING_CURVE_KEY, RELIABILITY_KEY, "quality_precision"})
"""Keys drawn elsewhere (plots) or internal to the recommender."""

_PER_PRECISION = ("dev_accuracy_by_precision", "inference_errors")
"""Read by :func:`precision_notes` into the per-precision inference rows."""

_PHASES = {"pretrain": "pre-training", "finetune": "fine-tuning", "train": "training"}


def humanize(key: str) -> str:
    """``dev_macro_f1`` -> ``dev macro f1``."""
    return key.replace("_", " ").strip()


def value_text(value: Any, max_items: int = 12) -> str:
    """Any JSON value as one readable line: numbers by :func:`fmt_number`, dicts as ``k v, ...``."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return fmt_number(value)
    if isinstance(value, Mapping):
        items = list(value.items())
        text = ", ".join(f"{humanize(str(k))} {value_text(v, max_items)}" for k, v in items[:max_items])
        return text + (f", … ({len(items)} in all)" if len(items) > max_items else "")
    if isinstance(value, (list, tuple)):
        text = ", ".join(value_text(v, max_items) for v in value[:max_items])
        return text + (f", … ({len(value)} in all)" if len(value) > max_items else "")
    return str(value)


def overrides_text(c: CandidateResult) -> str | None:
    """The preset settings a candidate changed (``n_embd=128, use_char_cnn=False``), if any."""
    name, source = c.name, c.source
    if source and name.startswith(source + "(") and name.endswith(")"):
        return name[len(source) + 1:-1].replace(",", ", ")
    init = c.extra.get("init")
    if isinstance(init, str) and ", overrides " in init:
        raw = init.split(", overrides ", 1)[1]
        try:
            parsed = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw
        if isinstance(parsed, dict):
            return ", ".join(f"{k}={v}" for k, v in parsed.items())
    return None


def _recipe(r: Mapping[str, Any]) -> str:
    parts = []
    if r.get("lr") is not None:
        parts.append(f"peak lr {r['lr']:g}")
    for key, label in (("batch_size", "batch {}"), ("max_len", "max length {} tokens"),
                       ("max_epochs", "up to {} epochs"), ("eval_every", "dev eval every {} steps"),
                       ("patience", "early-stopping patience {}")):
        if r.get(key) is not None:
            parts.append(label.format(r[key]))
    if r.get("pretrain_lr") is not None:
        parts.append(f"pre-training peak lr {r['pretrain_lr']:g}")
    known = {"lr", "batch_size", "max_len", "max_epochs", "eval_every", "patience", "pretrain_lr"}
    parts += [f"{humanize(k)} {value_text(v)}" for k, v in r.items() if k not in known and v is not None]
    return ", ".join(parts) or MISSING


def _phases(d: Mapping[str, Any], fmt: Callable[[Any], str]) -> str:
    return ", ".join(f"{_PHASES.get(k, humanize(k))} {fmt(v)}" for k, v in d.items())


def _sizes(d: Mapping[str, Any]) -> str:
    return ", ".join(f"{fmt_mb(v)} ({k})" for k, v in d.items())


def _scores(d: Mapping[str, Any]) -> str:
    return ", ".join(f"{humanize(k)} {fmt_value(v, k) if isinstance(v, float) else value_text(v)}"
                     for k, v in d.items())


def _macro_f1(extra: Mapping[str, Any], split: str) -> str:
    return fmt_interval(extra.get(f"{split}_macro_f1"), extra.get(f"{split}_macro_f1_ci"), "macro_f1")


_PAIRED = {"dev_macro_f1": "macro-F1 dev", "test_macro_f1": "macro-F1 test"}
"""Values shown with their ``<key>_ci`` interval."""

# key -> (group, label, formatter of the value)
_KNOWN: dict[str, tuple[str, str, Callable[[Any], str]]] = {
    "dev_mcc": ("Quality", "MCC dev", lambda v: fmt_value(v, "mcc") if isinstance(v, float) else value_text(v)),
    "dev_scores": ("Quality", "dev scores", _scores),
    "dev_n_scored": ("Quality", "dev examples scored", value_text),
    "dev_ci_error": ("Quality", "no dev interval", str),
    "dev_note": ("Quality", "note", str),
    "init": ("Model", "initialisation", str),
    "architecture": ("Model", "architecture", str),
    "tokenizer": ("Model", "tokenizer", str),
    "saved_size_mb": ("Model", "saved weights", _sizes),
    "run_dir": ("Model", "run directory", str),
    "recipe": ("Training", "recipe", _recipe),
    "pretrain_dev": ("Training", "pre-training dev", _scores),
    "cpu_s": ("Training", "CPU time", lambda d: _phases(d, fmt_duration)),
    "candidate_wall_s": ("Training", "wall time, whole candidate", fmt_duration),
    "decode_error": ("Inference", "decoding not timed", str),
}


def extra_rows(c: CandidateResult) -> dict[str, list[tuple[str, str]]]:
    """{group: [(label, value), ...]} for everything in ``c.extra`` worth showing."""
    extra = c.extra or {}
    out: dict[str, list[tuple[str, str]]] = {g: [] for g in GROUPS}
    for key, value in extra.items():
        if key in HIDDEN or key.startswith("_") or key in _PER_PRECISION or key.endswith("_ci"):
            continue
        if key == "inference" and isinstance(value, Mapping):
            if value.get("scope"):
                out["Inference"].append(("what is timed", str(value["scope"])))
            if value.get("measured_in"):
                out["Inference"].append(("measured in", str(value["measured_in"])))
            continue
        if key in _PAIRED:
            label = _PAIRED[key] + (" [95% CI]" if extra.get(f"{key}_ci") else "")
            out["Quality"].append((label, _macro_f1(extra, key.split("_")[0])))
            continue
        if key in _KNOWN:
            group, label, fmt = _KNOWN[key]
            out[group].append((label, MISSING if value is None else fmt(value)))
            continue
        out["Other"].append((humanize(key), value_text(value)))
    return out


def precision_notes(c: CandidateResult, precision: str) -> list[str]:
    """What else is known of one precision: how it ran, its dev accuracy, why it failed."""
    extra = c.extra or {}
    notes = []
    methods = (extra.get("inference") or {}).get("methods") if isinstance(extra.get("inference"), Mapping) else None
    if isinstance(methods, Mapping) and methods.get(precision):
        notes.append(str(methods[precision]))
    acc = (extra.get("dev_accuracy_by_precision") or {}).get(precision)
    if isinstance(acc, (int, float)):
        notes.append(f"dev accuracy {fmt_value(float(acc), 'accuracy')}")
    err = (extra.get("inference_errors") or {}).get(precision)
    if err:
        notes.append(f"failed: {err}")
    return notes


def inference_error_precisions(c: CandidateResult) -> list[str]:
    """Precisions that could not be measured (listed in the inference rows even without a latency)."""
    errors = c.extra.get("inference_errors") if c.extra else None
    return [str(p) for p in errors] if isinstance(errors, Mapping) else []


def learning_curve_points(comparison: Comparison) -> list[LearningCurvePoint]:
    """Every candidate's learning-curve points (empty when none was measured)."""
    out = []
    for c in comparison.candidates:
        for point in (c.extra or {}).get(LEARNING_CURVE_KEY) or []:
            out.append(LearningCurvePoint.from_dict(c.name, point))
    return out


def reliability_bins(c: CandidateResult) -> tuple[list[ReliabilityBin], list[ReliabilityBin]]:
    """(raw, temperature-scaled) reliability bins of a candidate; empty lists when not measured."""
    data = (c.extra or {}).get(RELIABILITY_KEY) or {}
    if not isinstance(data, Mapping):
        return [], []
    return ([ReliabilityBin.from_dict(b) for b in data.get("raw") or []],
            [ReliabilityBin.from_dict(b) for b in data.get("calibrated") or []])
