"""The report's tables, built once as rows of strings and rendered by ``markdown.py`` and
``html.py`` (so both formats always agree); the Pareto front they mark.

Every table takes ``names``, ``{candidate name: display name}`` (:func:`gptbert.report.names.display_names`);
without it the full candidate names are shown (the terminal's ``results show``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gptbert.recommend.constraints import Constraints, operating_point
from gptbert.report.extras import GROUPS, extra_rows, inference_error_precisions, precision_notes, value_text
from gptbert.report.format import (MISSING, fmt_duration, fmt_mb, fmt_ms, fmt_number, fmt_params,
                                   fmt_quality, fmt_rate)
from gptbert.results import CandidateResult, Comparison

__all__ = ["Table", "candidate_anchor", "candidate_latency", "candidate_table", "failed_candidates", "flatten", "hardware_table",
           "latency_table", "pareto_candidates", "pareto_front", "profile_table", "run_table", "size_table",
           "summary_table", "training_table"]


@dataclass
class Table:
    """A titled table of pre-formatted cells. A row of one cell is a group heading."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str | None = None
    """One line under the table (what a mark means)."""
    anchor: str | None = None
    """HTML id of the table's heading."""
    widths: dict[int, str] = field(default_factory=dict)
    """Column index -> CSS class hint ('num' right-aligns, 'wrap' lets long text wrap)."""


def pareto_front(points: Sequence[tuple[float | None, float | None]], maximize_quality: bool = True) -> list[int]:
    """Indices (ascending) of the points on the quality/cost Pareto front.

    Each point is ``(quality, cost)`` (a latency, a size); lower cost is better, and higher
    quality unless ``maximize_quality`` is False. A point is on the front when no other point
    is at least as good on both axes and strictly better on one, so identical points
    are all on the front. Points with a missing or non-finite coordinate are never on it.
    """
    valid: list[tuple[int, float, float]] = []
    for i, (q, cost) in enumerate(points):
        if q is None or cost is None or not math.isfinite(q) or not math.isfinite(cost):
            continue
        valid.append((i, q if maximize_quality else -q, cost))
    return [i for i, q, c in valid
            if not any(q2 >= q and c2 <= c and (q2 > q or c2 < c) for j, q2, c2 in valid if j != i)]


def candidate_latency(c: CandidateResult) -> tuple[float | None, str | None]:
    """(p95 ms, precision) at the candidate's fastest measured precision."""
    if not c.latency:
        return None, None
    prec = min(c.latency, key=lambda p: c.latency[p].p95_ms)
    return c.latency[prec].p95_ms, prec


def metric_name(comparison: Comparison) -> str:
    return next((c.quality.metric for c in comparison.candidates if c.quality is not None), "quality")


def pareto_candidates(comparison: Comparison) -> list[CandidateResult]:
    """Successful candidates on the dev-quality vs fastest-p95 Pareto front."""
    ok = [c for c in comparison.candidates if c.ok and c.quality is not None]
    maximize = all(c.quality.higher_is_better for c in ok)  # type: ignore[union-attr]
    points = [(c.quality.value, candidate_latency(c)[0]) for c in ok]  # type: ignore[union-attr]
    return [ok[i] for i in pareto_front(points, maximize_quality=maximize)]


def failed_candidates(comparison: Comparison) -> list[CandidateResult]:
    return [c for c in comparison.candidates if not c.ok]


def candidate_anchor(c: CandidateResult) -> str:
    """The HTML id of a candidate's section."""
    return "cand-" + (re.sub(r"[^A-Za-z0-9]+", "-", c.name).strip("-") or "x")


def _name(c: CandidateResult, names: Mapping[str, str] | None) -> str:
    return (names or {}).get(c.name, c.name)


def _train_wall(c: CandidateResult) -> float | None:
    walls = [s.wall_s for s in (c.pretrain, c.finetune) if s is not None and s.wall_s is not None]
    return sum(walls) if walls else None


def summary_table(comparison: Comparison, names: Mapping[str, str] | None = None,
                  constraints: Constraints | None = None) -> Table:
    """One row per candidate at its deployment precision (as the recommender sees it): dev and
    test quality with intervals, p95 latency, throughput, size, memory, parameters, training time."""
    metric = metric_name(comparison)
    cons = constraints or Constraints()
    front = {c.name for c in pareto_candidates(comparison)}
    rows = []
    for c in comparison.candidates:
        name = _name(c, names) + (" ★" if c.name in front else "")
        if not c.ok:
            rows.append([name, c.family, c.status] + [MISSING] * 8)
            continue
        pt = operating_point(c, cons)
        rows.append([
            name, c.family, fmt_quality(c, "dev", plus_minus=False), fmt_quality(c, "test", plus_minus=False),
            pt.precision if pt.p95 is not None else MISSING, fmt_ms(pt.p95), fmt_rate(pt.throughput),
            fmt_mb(pt.disk), fmt_mb(pt.memory), fmt_params(c.n_params), fmt_duration(_train_wall(c)),
        ])
    headers = ["candidate", "family", f"{metric} dev [95% CI]", f"{metric} test [95% CI]", "precision",
               "p95 ms, batch 1", "items/s, batch 32", "size", "memory (RSS)", "params", "training time"]
    note = ("★ on the quality / latency Pareto front: no other candidate is at least as good and at least as fast. "
            "Each row at the candidate's fastest precision; size at that precision, memory = peak RSS at inference.")
    return Table("Summary", headers, rows, note=note, anchor="summary",
                 widths={i: "num" for i in (5, 6, 7, 8, 9, 10)})


def _phase_text(stats: Any, metric: str) -> str:
    parts = [fmt_duration(stats.wall_s)]
    if stats.tokens_per_s is not None:
        parts.append(f"{fmt_rate(stats.tokens_per_s)} tokens/s")
    if stats.tokens is not None:
        parts.append(f"{fmt_number(stats.tokens)} tokens")
    if stats.steps is not None:
        parts.append(f"{fmt_number(stats.steps)} steps")
    if stats.final_loss is not None:
        parts.append(f"final loss {stats.final_loss:.3f}")
    if stats.best_metric is not None:
        parts.append(f"best {metric} {fmt_number(stats.best_metric)}")
    if stats.stop_reason:
        parts.append(f"stopped: {stats.stop_reason}")
    return ", ".join(parts)


def _precision_rows(c: CandidateResult) -> list[list[str]]:
    rows = []
    for prec in dict.fromkeys([*c.latency, *c.throughput, *inference_error_precisions(c)]):
        parts = []
        lat = c.latency.get(prec)
        if lat is not None:
            parts.append(f"p50 {fmt_ms(lat.p50_ms)} ms, p95 {fmt_ms(lat.p95_ms)} ms, mean {fmt_ms(lat.mean_ms)} ms "
                         f"(batch 1, n={lat.n})")
        if c.throughput.get(prec) is not None:
            parts.append(f"{fmt_rate(c.throughput[prec])} items/s at batch 32")
        rows.append([prec, "; ".join(parts + precision_notes(c, prec))])
    return rows


def _model_rows(c: CandidateResult) -> list[list[str]]:
    rows = [["family / source", f"{c.family} / {c.source or MISSING}"]]
    if c.n_params is not None:
        rows.append(["parameters (non-embedding)", f"{fmt_params(c.n_params)} ({fmt_params(c.n_params_non_embedding)})"])
    if c.size_mb:
        rows.append(["weights fp32 / bf16 / int8 (MB)",
                     " / ".join(fmt_mb(c.size_mb.get(p), unit=False) for p in ("fp32", "bf16", "int8"))])
    return rows


def candidate_table(c: CandidateResult, names: Mapping[str, str] | None = None) -> Table:
    """What was measured about one candidate, grouped: quality, model, training, inference (and other)."""
    metric = c.quality.metric if c.quality else "quality"
    extra = extra_rows(c)
    groups: dict[str, list[list[str]]] = {g: [] for g in GROUPS}
    groups["Quality"].append(["status", c.status + (f": {c.error}" if c.error else "")])
    if c.quality is not None:
        groups["Quality"].append([f"{metric} dev [95% CI]", fmt_quality(c, "dev")])
        if c.quality.test is not None:
            groups["Quality"].append([f"{metric} test [95% CI]", fmt_quality(c, "test")])
    groups["Model"] += _model_rows(c)
    for label, stats in (("pre-training", c.pretrain), ("fine-tuning", c.finetune)):
        if stats is not None:
            groups["Training"].append([label, _phase_text(stats, metric)])
    if c.peak_rss_mb.get("train") is not None:
        groups["Training"].append(["peak memory (RSS) training", fmt_mb(c.peak_rss_mb["train"])])
    groups["Inference"] += _precision_rows(c)
    if c.peak_rss_mb.get("inference") is not None:
        groups["Inference"].append(["peak memory (RSS) inference", fmt_mb(c.peak_rss_mb["inference"])])
    if c.can_generate and c.ok:
        groups["Inference"].append(["decoding", fmt_rate(c.decode_tokens_per_s, "tokens/s")])
    rows: list[list[str]] = []
    for g in GROUPS:
        body = groups[g] + [list(r) for r in extra[g]]
        if body:
            rows += [[g]] + body
    title = _name(c, names)
    if title != c.name:
        title += f" = {c.name}"
    return Table(title, ["", ""], rows, anchor=candidate_anchor(c), widths={1: "wrap"})


def latency_table(comparison: Comparison, names: Mapping[str, str] | None = None) -> Table:
    precisions = list(dict.fromkeys(
        list(comparison.precisions) + [p for c in comparison.candidates for p in c.latency]
    ))
    headers = ["candidate"]
    for p in precisions:
        headers += [f"{p} p50 ms", f"{p} p95 ms", f"{p} items/s"]
    rows = []
    for c in comparison.candidates:
        row = [_name(c, names)]
        for p in precisions:
            lat = c.latency.get(p)
            row += [fmt_ms(lat.p50_ms if lat else None), fmt_ms(lat.p95_ms if lat else None),
                    fmt_rate(c.throughput.get(p))]
        rows.append(row)
    return Table("Latency (batch 1) and throughput (batch 32) by precision", headers, rows,
                 widths={i: "num" for i in range(1, len(headers))})


def training_table(comparison: Comparison, names: Mapping[str, str] | None = None) -> Table:
    rows = []
    for c in comparison.candidates:
        p, f = c.pretrain, c.finetune
        rows.append([_name(c, names), fmt_duration(p.wall_s if p else None), fmt_rate(p.tokens_per_s if p else None),
                     fmt_duration(f.wall_s if f else None), fmt_rate(f.tokens_per_s if f else None),
                     fmt_mb(c.peak_rss_mb.get("train")),
                     fmt_rate(c.decode_tokens_per_s) if c.can_generate else "n/a"])
    headers = ["candidate", "pre-training", "pre-train tokens/s", "fine-tuning", "fine-tune tokens/s",
               "memory (RSS) training", "decoding tokens/s"]
    return Table("Training cost and generation speed", headers, rows, widths={i: "num" for i in range(1, 7)})


def size_table(comparison: Comparison, names: Mapping[str, str] | None = None) -> Table:
    rows = [[_name(c, names), fmt_params(c.n_params), fmt_params(c.n_params_non_embedding)]
            + [fmt_mb(c.size_mb.get(p), unit=False) for p in ("fp32", "bf16", "int8")] for c in comparison.candidates]
    return Table("Size", ["candidate", "params", "non-embedding", "fp32 MB", "bf16 MB", "int8 MB"], rows,
                 widths={i: "num" for i in range(1, 6)})


def flatten(data: Mapping[str, Any] | None, prefix: str = "", max_items: int = 20) -> dict[str, str]:
    """Nested dict -> {'a.b': 'value'} strings for key/value tables (long lists and flat dicts shortened)."""
    out: dict[str, str] = {}
    for key, value in (data or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and not (len(value) > max_items and
                                               all(not isinstance(v, Mapping) for v in value.values())):
            out.update(flatten(value, name + ".", max_items))
        else:
            out[name] = value_text(value, max_items)
    return out


def hardware_table(hardware: Mapping[str, Any]) -> Table:
    hw = dict(hardware)
    flags = hw.pop("cpu_flags", None)
    ram = hw.pop("ram_total_mb", None)
    rows = [[k, v] for k, v in flatten(hw).items()]
    if ram is not None:
        rows.append(["ram_total", fmt_mb(ram)])
    if isinstance(flags, Mapping):
        present = [k for k, v in flags.items() if v]
        rows.append(["cpu_flags", ", ".join(present) if present else "none of " + ", ".join(flags)])
    return Table("Hardware", ["key", "value"], rows, widths={1: "wrap"})


def profile_table(profile: Mapping[str, Any]) -> Table:
    """The data profile: one column per split (train / dev / test) when it is given per split."""
    splits = [k for k, v in (profile or {}).items() if k in ("train", "dev", "test") and isinstance(v, Mapping)]
    if not splits:
        return Table("Data profile", ["key", "value"], [[k, v] for k, v in flatten(profile).items()],
                     widths={1: "wrap"})
    flat = {s: flatten(profile[s], max_items=8) for s in splits}
    keys = list(dict.fromkeys(k for s in splits for k in flat[s]))
    rows = [[k] + [flat[s].get(k, MISSING) for s in splits] for k in keys
            if any(flat[s].get(k, MISSING) != MISSING for s in splits)]
    rest = {k: v for k, v in profile.items() if k not in splits}
    rows += [[k, v] + [""] * (len(splits) - 1) for k, v in flatten(rest).items()]
    return Table("Data profile", ["", *splits], rows, widths={i: "wrap" for i in range(1, len(splits) + 1)})


def run_table(comparison: Comparison) -> Table:
    rows = [["id", comparison.id], ["created", comparison.created_at], ["task", comparison.task],
            ["gptbert", comparison.version], ["budget", comparison.budget or MISSING],
            ["precisions", ", ".join(comparison.precisions) or MISSING]]
    for split in ("train", "dev", "test"):
        if comparison.data.get(split):
            rows.append([f"data.{split}", str(comparison.data[split])])
    return Table("Run", ["key", "value"], rows, widths={1: "wrap"})

