"""What the report says, in the order it says it, whatever the format: :func:`build_report`.

``markdown.py`` and ``html.py`` render a :class:`Report`; they hold no content of their own.
Order: title and one-line context, the recommendation card, the summary table (dev and test
quality, latency, throughput, size, memory, training time), the legend of display names, the
plots, the full reasoning and the Pareto front, the detail tables, a section per candidate,
the failures, and the run / hardware / data context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gptbert.recommend import Constraints, recommend
from gptbert.report.card import Card, build_card
from gptbert.report.format import fmt_mb, fmt_ms, fmt_quality, fmt_value
from gptbert.report.names import display_names, legend_table
from gptbert.report.tables import (Table, candidate_latency, candidate_table, failed_candidates, hardware_table,
                                   latency_table, pareto_candidates, profile_table, run_table, size_table,
                                   summary_table, training_table)
from gptbert.results import CandidateResult, Comparison

__all__ = ["CandidateSection", "Report", "build_report", "recommendation_for"]


def recommendation_for(comparison: Comparison, constraints: Constraints | None = None) -> Any:
    """The :class:`gptbert.recommend.Recommendation` for a comparison (default: no limits)."""
    return recommend(comparison.candidates, constraints, hardware=comparison.hardware or None)


@dataclass
class CandidateSection:
    """One candidate's section: a title, a one-line headline, its grouped table, its own figures."""

    title: str
    headline: str
    table: Table
    plots: list[Any] = field(default_factory=list)


@dataclass
class Report:
    title: str
    meta: list[str]
    card: Card
    summary: Table
    legend: Table
    front: list[tuple[str, str]]
    """(display name, 'accuracy 0.862, 6.50 ms p95 (int8)') of the candidates on the Pareto front."""
    details: list[Table]
    sections: list[CandidateSection]
    failed: list[tuple[str, str, str]]
    """(display name, status, error) of the candidates that did not run."""
    context: list[Table]
    plots: list[Any] = field(default_factory=list)
    plots_note: str | None = None
    """Why there are no plots (matplotlib missing, nothing to plot, drawing failed)."""


def _meta(comparison: Comparison) -> list[str]:
    n_ok = sum(c.ok for c in comparison.candidates)
    lines = [f"Run {comparison.id}, {comparison.created_at}, gptbert {comparison.version}; "
             f"{len(comparison.candidates)} candidates ({n_ok} ran)"
             + (f"; budget {comparison.budget}" if comparison.budget else "") + "."]
    data = ", ".join(f"{k} {v}" for k, v in comparison.data.items() if v)
    if data:
        lines.append(f"Data: {data}.")
    hw = comparison.hardware or {}
    if hw:
        gpu = hw.get("gpu")
        gpu_name = gpu.get("name") if isinstance(gpu, dict) else None
        cores = hw.get("usable_cores") or hw.get("logical_cores")
        parts = [str(hw.get("cpu_model") or "unknown CPU")]
        if cores:
            parts.append(f"{cores} usable cores")
        if hw.get("ram_total_mb"):
            parts.append(f"{fmt_mb(hw['ram_total_mb'])} RAM")
        parts.append(f"GPU {gpu_name}" if gpu_name else "no GPU")
        lines.append("Measured on: " + ", ".join(parts) + ".")
    return lines


def _headline(c: CandidateResult) -> str:
    if not c.ok:
        return f"{c.status}: {c.error or 'no error message recorded'}"
    parts = []
    if c.quality is not None and c.quality.dev is not None:
        parts.append(f"{c.quality.metric} {fmt_quality(c, 'dev', plus_minus=False)}")
    p95, prec = candidate_latency(c)
    if p95 is not None:
        parts.append(f"p95 {fmt_ms(p95)} ms ({prec})")
    if c.size_mb.get("fp32") is not None:
        parts.append(f"{fmt_mb(c.size_mb['fp32'])} fp32")
    return " · ".join(parts)


def _front(comparison: Comparison, names: dict[str, str]) -> list[tuple[str, str]]:
    out = []
    for c in pareto_candidates(comparison):
        p95, prec = candidate_latency(c)
        q = c.quality
        assert q is not None and q.value is not None
        lat = f"{fmt_ms(p95)} ms p95 ({prec})" if p95 is not None else "no latency"
        out.append((names[c.name], f"{q.metric} {fmt_value(q.value, q.metric)}, {lat}"))
    return out


def _plots(comparison: Comparison, names: dict[str, str], constraints: Constraints | None
           ) -> tuple[list[Any], dict[str, list[Any]], str | None]:
    """(comparison figures, {candidate: its figures}, why there are none)."""
    from gptbert.report import plots

    if not plots.available():
        return [], {}, ("Plots need matplotlib (`pip install 'gptbert[plots]'`); this report shows the "
                        "tables only.")
    try:
        figures = plots.all_plots(comparison, names, constraints)
        per = {c.name: plots.candidate_plots(comparison, c.name, names) for c in comparison.candidates}
    except Exception as e:  # a broken plotting stack must not lose the report
        return [], {}, f"Plots could not be drawn ({type(e).__name__}: {e}); tables only."
    if not figures:
        return [], per, "Nothing to plot: no latency, size or curve data."
    return figures, per, None


def build_report(comparison: Comparison, constraints: Constraints | None = None, *,
                 with_plots: bool = True) -> Report:
    """Everything the report shows; ``with_plots=False`` skips drawing (the Markdown report has no images)."""
    names = display_names(comparison)
    rec = recommendation_for(comparison, constraints)
    figures: list[Any] = []
    per: dict[str, list[Any]] = {}
    note = None
    if with_plots:
        figures, per, note = _plots(comparison, names, constraints)
    sections = [CandidateSection(names[c.name] if names[c.name] == c.name else f"{names[c.name]} = {c.name}",
                                 _headline(c), candidate_table(c, names), per.get(c.name, []))
                for c in comparison.candidates]
    return Report(
        title=f"gptbert comparison: {comparison.task}",
        meta=_meta(comparison),
        card=build_card(comparison, rec, names, constraints),
        summary=summary_table(comparison, names, constraints),
        legend=legend_table(comparison, names),
        front=_front(comparison, names),
        details=[latency_table(comparison, names), size_table(comparison, names),
                 training_table(comparison, names)],
        sections=sections,
        failed=[(names[c.name], c.status, c.error or "no error message recorded")
                for c in failed_candidates(comparison)],
        context=[run_table(comparison), hardware_table(comparison.hardware),
                 profile_table(comparison.dataset_profile)],
        plots=figures,
        plots_note=note,
    )
