"""The recommendation as a card at the top of the report: the choice, its three strongest
reasons, the constraints it meets, the runner-up in one line; and the full reasoning below.

The sentences are the recommender's (:mod:`gptbert.recommend.text`), with candidate names
shortened to their display names. "Strongest" is measured: the quality reason always comes
first; the cost reasons follow in the order of how many of the other eligible candidates the
choice beats on that axis.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gptbert.recommend import Constraints, Recommendation
from gptbert.recommend.constraints import OperatingPoint, operating_point
from gptbert.report.extras import overrides_text
from gptbert.report.format import fmt_quality
from gptbert.report.names import relabel
from gptbert.results import Comparison

__all__ = ["Card", "build_card", "strongest_reasons"]

N_REASONS = 3

# reason prefix (as gptbert.recommend.text writes it) -> (operating-point value, lower is better)
_AXES: tuple[tuple[str, str, bool], ...] = (
    ("p95 latency", "p95", True),
    ("inference peak RSS", "memory", True),
    ("size ", "disk", True),
    ("throughput ", "throughput", False),
    ("decodes ", "decode", False),
)
_NOTE_PREFIXES = ("note:", "warning:", "accuracy at ")
_CONSTRAINT_PREFIX = "meets "


@dataclass
class Card:
    """What the card shows, as plain sentences (rendered by html.py and markdown.py)."""

    title: str
    """'Recommendation: NAME' or 'No recommendation'."""
    summary: str
    """One line: family, deployment precision and device, dev and test quality."""
    reasons: list[str]
    """The strongest reasons (at most three)."""
    constraints: str
    """The limits and how the choice meets them ('no limits set' when there are none)."""
    runner_up: str | None = None
    """The runner-up in one sentence."""
    excluded: list[str] = field(default_factory=list)
    """'name (why, in a few words)' of every excluded candidate."""
    notes: list[str] = field(default_factory=list)
    """Warnings that come with the choice (precision, device, metrics)."""
    problem: list[str] = field(default_factory=list)
    """Without a choice: the recommender's explanation, one item per line."""
    all_reasons: list[str] = field(default_factory=list)
    """Every reason, for the full-reasoning section."""
    excluded_full: list[tuple[str, str]] = field(default_factory=list)
    ranking: list[str] = field(default_factory=list)
    choice: str | None = None
    """The chosen candidate's full name."""


def _value(pt: OperatingPoint, key: str) -> float | None:
    return pt.c.decode_tokens_per_s if key == "decode" else getattr(pt, key)


def _axis_strength(best: OperatingPoint, others: Sequence[OperatingPoint], key: str, lower: bool) -> float:
    """Share of the others the choice beats on one axis (ties count half); 0 without others."""
    mine = _value(best, key)
    theirs = [v for v in (_value(p, key) for p in others) if v is not None]
    if mine is None or not theirs:
        return 0.0
    wins = sum(1.0 if (mine < v if lower else mine > v) else 0.5 if mine == v else 0.0 for v in theirs)
    return wins / len(theirs)


def strongest_reasons(rec: Recommendation, comparison: Comparison, constraints: Constraints | None = None,
                      n: int = N_REASONS) -> list[str]:
    """The quality reason, then the cost reasons on which the choice beats most of the others."""
    reasons = [r for r in rec.reasons if not r.startswith(_NOTE_PREFIXES) and not r.startswith(_CONSTRAINT_PREFIX)]
    if not reasons or rec.choice is None:
        return reasons[:n]
    cons = constraints or Constraints()
    eligible = set(rec.ranking)
    points = {c.name: operating_point(c, cons) for c in comparison.candidates if c.name in eligible}
    best = points.get(rec.choice)
    if best is None:
        return reasons[:n]
    others = [p for name, p in points.items() if name != rec.choice]

    def strength(reason: str) -> float:
        for prefix, key, lower in _AXES:
            if reason.startswith(prefix):
                return _axis_strength(best, others, key, lower)
        return 0.0

    head, rest = reasons[0], reasons[1:]
    ranked = sorted(rest, key=lambda r: -strength(r))  # stable: the recommender's order breaks ties
    return [head, *ranked][:n]


_TIED = re.compile(r"(?P<head>not significantly above|statistically tied with) (?P<names>.+?) "
                   r"(?P<tail>\(95%\)|\(the difference is not significant)")


def _shorten_ties(reason: str, keep: int = 2) -> str:
    """The quality reason with a long list of tied candidates cut to the first ``keep`` and a count."""
    m = _TIED.search(reason)
    if not m:
        return reason
    entries = re.split(r"(?<=\)), ", m.group("names"))
    if len(entries) <= keep + 1:
        return reason
    short = ", ".join(entries[:keep]) + f" and {len(entries) - keep} other candidates"
    return reason[:m.start("names")] + short + reason[m.end("names"):]


def _short_reason(reason: str) -> str:
    """An exclusion reason in a few words: its first clause."""
    first = reason.split(";")[0].split(": ")[0]
    return first if len(first) <= 60 else first[:59] + "…"


def _summary(rec: Recommendation, comparison: Comparison, constraints: Constraints) -> str:
    c = comparison.candidate(rec.choice) if rec.choice else None
    if c is None:
        return ""
    what = c.source if c.source and c.source != c.name else ""
    changes = overrides_text(c)
    if changes:
        what = f"{what or c.name} with {changes}"
    parts = [c.family + (f" ({what})" if what else "")]
    parts.append(f"deploy at {rec.precision} on {constraints.device}")
    q = c.quality
    if q is not None:
        if q.dev is not None:
            parts.append(f"{q.metric} {fmt_quality(c, 'dev', plus_minus=False)} on dev")
        if q.test is not None:
            parts.append(f"{fmt_quality(c, 'test', plus_minus=False)} on test")
    return " · ".join(parts)


def _constraints_text(rec: Recommendation, constraints: Constraints) -> str:
    margins = [r for r in rec.reasons if r.startswith(_CONSTRAINT_PREFIX)]
    described = constraints.describe()
    if described == f"device={constraints.device}":
        return (f"none set (deploying on {constraints.device}), so every candidate that ran was eligible; "
                "to rank under limits run `gptbert recommend --results RUN_DIR --max-latency-ms MS` "
                "(or `--max-memory-mb`, `--max-disk-mb`, `--min-quality`)")
    return "; ".join([described] + margins)


def build_card(comparison: Comparison, rec: Recommendation, names: Mapping[str, str],
               constraints: Constraints | None = None) -> Card:
    """The card (and the full reasoning) for ``rec``, with display names."""
    cons = constraints or Constraints()

    def short(text: str) -> str:
        return relabel(text, names)

    excluded = [f"{names.get(n, n)} ({short(_short_reason(why))})" for n, why in rec.excluded]
    common = dict(excluded=excluded, all_reasons=[short(r) for r in rec.reasons],
                  excluded_full=[(names.get(n, n), short(why)) for n, why in rec.excluded],
                  ranking=[names.get(n, n) for n in rec.ranking], choice=rec.choice)
    if rec.choice is None:
        lines = [line.strip().removeprefix("- ") for line in rec.text.splitlines() if line.strip()]
        return Card(title="No recommendation", summary=short(lines[0]) if lines else "", reasons=[],
                    constraints=_constraints_text(rec, cons), problem=[short(x) for x in lines[1:]], **common)
    note = rec.runner_up_note
    runner = short(note) if note else None
    return Card(
        title=f"Recommendation: {names.get(rec.choice, rec.choice)}",
        summary=_summary(rec, comparison, cons),
        reasons=[_shorten_ties(short(r)) for r in strongest_reasons(rec, comparison, cons)],
        constraints=_constraints_text(rec, cons),
        runner_up=runner,
        notes=[short(r) for r in rec.reasons if r.startswith(_NOTE_PREFIXES)],
        **common,  # type: ignore[arg-type]
    )
