"""Token classification: BIO entity extraction and entity-level precision / recall / F1 (seqeval)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

from gptbert.metrics._common import check_lengths, require

EntityMode = Literal["default", "strict"]
Entity = tuple[str, int, int]


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
    check_lengths(true_tag_seqs, pred_tag_seqs, "true tag sequences")
    y_true = [list(s) for s in true_tag_seqs]
    y_pred = [list(s) for s in pred_tag_seqs]
    for i, (t, p) in enumerate(zip(y_true, y_pred)):
        if len(t) != len(p):
            raise ValueError(f"sequence {i}: {len(t)} true tags vs {len(p)} predicted tags")
        for tag in (*t, *p):
            _split_tag(tag)
    seqeval_metrics = require("seqeval.metrics", "seqeval", "entity_f1")
    kwargs: dict[str, Any] = {"average": "micro", "zero_division": 0}
    if mode == "strict":
        kwargs.update(mode="strict", scheme=require("seqeval.scheme", "seqeval", "entity_f1").IOB2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "precision": float(seqeval_metrics.precision_score(y_true, y_pred, **kwargs)),
            "recall": float(seqeval_metrics.recall_score(y_true, y_pred, **kwargs)),
            "f1": float(seqeval_metrics.f1_score(y_true, y_pred, **kwargs)),
        }




def _entity_f1(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> float:
    return entity_f1(y_true, y_pred)["f1"]
