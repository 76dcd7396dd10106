"""Reports of a comparison: Markdown, self-contained HTML (with plots) and JSON.

``write_reports(comparison, out_dir)`` writes ``report.md``, ``report.html`` and
``results.json``. What the report says is built once (:func:`gptbert.report.document.build_report`)
and rendered by ``markdown.py`` and ``html.py``, so both formats always agree:

* :mod:`~gptbert.report.card` - the recommendation card (choice, strongest reasons, constraints, runner-up);
* :mod:`~gptbert.report.tables` - :class:`Table` and every table; the Pareto front;
* :mod:`~gptbert.report.names` - short display names and their legend;
* :mod:`~gptbert.report.extras` - the one place that reads ``CandidateResult.extra``;
* :mod:`~gptbert.report.format` - numbers for people (MB / GB, ms, durations, intervals);
* :mod:`~gptbert.report.plots` (matplotlib, imported only when drawing), :mod:`~gptbert.report.labels`
  (label placement), :mod:`~gptbert.report.series` (typed learning-curve and reliability data).
"""

from __future__ import annotations

import os
from pathlib import Path

from gptbert.recommend import Constraints
from gptbert.report.document import build_report, recommendation_for
from gptbert.report.format import fmt_quality, fmt_value
from gptbert.report.html import write_html
from gptbert.report.markdown import write_markdown
from gptbert.report.names import display_names
from gptbert.report.series import LearningCurvePoint, ReliabilityBin
from gptbert.report.tables import (Table, candidate_latency, candidate_table, failed_candidates, flatten,
                                   latency_table, pareto_candidates, pareto_front, summary_table)
from gptbert.results import Comparison, save_results_json

__all__ = [
    "LearningCurvePoint",
    "ReliabilityBin",
    "Table",
    "build_report",
    "candidate_latency",
    "candidate_table",
    "display_names",
    "failed_candidates",
    "flatten",
    "fmt_quality",
    "fmt_value",
    "latency_table",
    "pareto_candidates",
    "pareto_front",
    "recommendation_for",
    "summary_table",
    "write_html",
    "write_markdown",
    "write_reports",
]


def write_reports(comparison: Comparison, out_dir: str | os.PathLike[str],
                  constraints: Constraints | None = None) -> dict[str, Path]:
    """Write report.md, report.html and results.json into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "json": save_results_json(comparison, out / "results.json"),
        "markdown": write_markdown(comparison, out / "report.md", constraints),
        "html": write_html(comparison, out / "report.html", constraints),
    }
