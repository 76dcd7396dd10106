"""Markdown report of a comparison (tables only: the figures are in report.html)."""

from __future__ import annotations

import os
from pathlib import Path

from gptbert.io.files import atomic_write_text
from gptbert.recommend import Constraints
from gptbert.report.card import Card
from gptbert.report.document import build_report
from gptbert.report.tables import Table
from gptbert.results import Comparison

__all__ = ["render_card", "render_markdown", "render_table", "write_markdown"]


def _cell(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip() or " "


def render_table(table: Table, level: int = 2) -> str:
    lines = [f"{'#' * level} {table.title}", ""]
    if not table.rows:
        return "\n".join(lines + ["(none)", ""])
    headers = table.headers if any(table.headers) else ["", ""]
    lines.append("| " + " | ".join(_cell(h) for h in headers) + " |")
    lines.append("|" + "|".join("---:" if table.widths.get(i) == "num" else "---" for i in range(len(headers))) + "|")
    for row in table.rows:
        if len(row) == 1 and len(headers) > 1:
            row = [f"**{row[0]}**"] + [""] * (len(headers) - 1)
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines + [""])


def render_card(card: Card) -> str:
    """The recommendation card as a heading, a summary line and short lists."""
    lines = [f"## {card.title}", ""]
    if card.summary:
        lines += [card.summary, ""]
    if card.reasons:
        lines += ["Why:", ""] + [f"{i}. {r}" for i, r in enumerate(card.reasons, 1)] + [""]
    if card.problem:
        lines += [f"- {r}" for r in card.problem] + [""]
    lines += [f"**Constraints:** {card.constraints}.", ""]
    if card.runner_up:
        lines += [f"**Runner-up:** {card.runner_up}", ""]
    if card.excluded:
        lines += [f"**Excluded:** {'; '.join(card.excluded)}.", ""]
    lines += [f"*{note}*\n" for note in card.notes]
    return "\n".join(lines)


def render_markdown(comparison: Comparison, constraints: Constraints | None = None) -> str:
    report = build_report(comparison, constraints, with_plots=False)
    card = report.card
    parts = [f"# {report.title}", "", *[f"{line}  " for line in report.meta], "", render_card(card),
             render_table(report.summary), render_table(report.legend),
             "Plots: see report.html next to this file.", "", "## Why this recommendation", ""]
    parts += [f"- {r}" for r in card.all_reasons] + [""]
    if card.runner_up:
        parts += [f"Runner-up: {card.runner_up}", ""]
    if card.excluded_full:
        parts += ["Excluded:", ""] + [f"- **{n}**: {_cell(why)}" for n, why in card.excluded_full] + [""]
    if len(card.ranking) > 1:
        parts += [f"Ranking (statistical ties broken by cost): {' > '.join(card.ranking)}", ""]
    parts += ["## Pareto front (dev quality vs p95 latency at batch 1)", ""]
    if report.front:
        parts += [f"- **{n}**: {t}" for n, t in report.front]
        parts += ["", "No other candidate is both at least as accurate and at least as fast as these."]
    else:
        parts.append("(no candidate has both a quality and a latency measurement)")
    parts.append("")
    parts += [render_table(t) for t in report.details]
    parts += ["## Candidates in detail", ""]
    parts += [render_table(s.table, level=3) for s in report.sections]
    parts += ["## Failed or skipped candidates", ""]
    if report.failed:
        parts += [f"- **{n}** ({s}): {_cell(err)}" for n, s, err in report.failed]
    else:
        parts.append("None: every candidate ran.")
    parts.append("")
    parts += [render_table(t) for t in report.context]
    return "\n".join(parts).rstrip() + "\n"


def write_markdown(comparison: Comparison, path: str | os.PathLike[str], constraints: Constraints | None = None) -> Path:
    """Write the Markdown report to ``path`` (atomically)."""
    return atomic_write_text(path, render_markdown(comparison, constraints))
