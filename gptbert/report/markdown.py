"""Markdown report of a comparison."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gptbert.io.files import atomic_write_text
from gptbert.report import (
    Table,
    candidate_latency,
    fmt_value,
    candidate_table,
    failed_candidates,
    hardware_table,
    latency_table,
    pareto_candidates,
    profile_table,
    recommendation_for,
    run_table,
    size_table,
    summary_table,
    training_table,
)
from gptbert.results import Comparison


def _cell(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip() or " "


def render_table(table: Table, level: int = 2) -> str:
    lines = [f"{'#' * level} {table.title}", ""]
    if not table.rows:
        return "\n".join(lines + ["(none)", ""])
    lines.append("| " + " | ".join(_cell(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---" for _ in table.headers) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines + [""])


def render_markdown(comparison: Comparison, constraints: Any = None) -> str:
    rec = recommendation_for(comparison, constraints)
    parts = [
        f"# gptbert comparison: {comparison.task}",
        "",
        f"Run `{comparison.id}`, {comparison.created_at}, {len(comparison.candidates)} candidates, "
        f"gptbert {comparison.version}.",
        "",
        "## Recommendation",
        "",
        "```text",
        rec.text,
        "```",
        "",
        render_table(summary_table(comparison)),
    ]
    front = pareto_candidates(comparison)
    parts += ["## Pareto front (dev quality vs p95 latency at batch 1)", ""]
    if front:
        for c in front:
            p95, prec = candidate_latency(c)
            q = c.quality
            assert q is not None and q.value is not None
            lat = f"{p95:.2f} ms p95 ({prec})" if p95 is not None else "no latency"
            parts.append(f"- **{c.name}**: {q.metric} {fmt_value(q.value, q.metric)}, {lat}")
        parts.append("")
        parts.append("No other candidate is both at least as accurate and at least as fast as these.")
    else:
        parts.append("(no candidate has both a quality and a latency measurement)")
    parts.append("")
    parts.append(render_table(latency_table(comparison)))
    parts.append(render_table(size_table(comparison)))
    parts.append(render_table(training_table(comparison)))
    parts += ["## Candidates", ""]
    for c in comparison.candidates:
        parts.append(render_table(candidate_table(c), level=3))
    failed = failed_candidates(comparison)
    parts += ["## Failed or skipped candidates", ""]
    if failed:
        for c in failed:
            parts.append(f"- **{c.name}** ({c.status}): {_cell(c.error or 'no error message recorded')}")
    else:
        parts.append("None: every candidate ran.")
    parts.append("")
    parts.append(render_table(run_table(comparison)))
    parts.append(render_table(hardware_table(comparison.hardware)))
    parts.append(render_table(profile_table(comparison.dataset_profile)))
    return "\n".join(parts).rstrip() + "\n"


def write_markdown(comparison: Comparison, path: str | os.PathLike[str], constraints: Any = None) -> Path:
    """Write the Markdown report to ``path`` (atomically)."""
    return atomic_write_text(path, render_markdown(comparison, constraints))
