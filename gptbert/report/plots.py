"""Report figures as PNG bytes (matplotlib, Agg canvas; optional extra ``plots``).

Every ``*_png`` function returns ``None`` when there is nothing to draw. Figures are drawn on
``matplotlib.figure.Figure`` objects with the Agg canvas directly, so pyplot's global state and
the user's backend are never touched. They are drawn at :data:`DPI` (for sharp text on
high-density screens) and shown at :data:`SHOWN_DPI`; saved with ``bbox_inches="tight"`` so no
axis label is ever cut off.

Readable with any number of candidates: scatter labels are placed by
:func:`gptbert.report.labels.place_labels` (no overlaps, leader lines when moved away), an axis
whose range spans more than :data:`LOG_DECADES` decades is logarithmic, legends sit outside the
axes, and figure heights grow with the number of rows.
"""

from __future__ import annotations

import importlib.util
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gptbert.recommend.constraints import Constraints, operating_point
from gptbert.report.extras import learning_curve_points, reliability_bins
from gptbert.report.labels import place_labels
from gptbert.report.series import LearningCurvePoint, ReliabilityBin, expected_calibration_error
from gptbert.report.tables import pareto_front
from gptbert.results import Comparison

__all__ = [
    "DPI", "Plot", "SHOWN_DPI", "all_plots", "available", "candidate_plots", "latency_distribution_png",
    "learning_curve_png", "quality_cost_figure", "quality_latency_png", "quality_size_png", "reliability_png",
    "training_curves_png",
]

DPI = 144
SHOWN_DPI = 96
"""The page shows a figure at its size in inches times this (CSS px)."""
LOG_DECADES = 1.5
FAMILY_COLORS = {"bert": "#3b6fb6", "gpt": "#e07b28", "elmo": "#3a9a5b", "baseline": "#8c564b", "other": "#7f7f7f"}
PRECISION_MARKERS = {"fp32": "o", "bf16": "^", "fp16": "v", "int8": "s"}
FRONT_COLOR = "#b8263a"
LABEL_SIZE = 8.5
"""Point labels of the scatter plots, points."""
_PHASE_TITLES = {"pretrain": "pre-training", "finetune": "fine-tuning", "train": "training"}


@dataclass
class Plot:
    """One figure of the report."""

    title: str
    png: bytes
    wide: bool = True
    """Full width (scatter plots); otherwise two may share a row."""
    caption: str = ""


def available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.08)
    return buf.getvalue()


def _spans_decades(values: Sequence[float]) -> bool:
    positive = [v for v in values if v is not None and v > 0]
    return len(positive) > 1 and math.log10(max(positive) / min(positive)) > LOG_DECADES


def _candidate_colors(names: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def _log_axis(ax: Any, which: str = "x") -> None:
    """A logarithmic axis with plain tick labels (0.1, 1, 10, not 10^-1) and light minor grid lines."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = (ax.dataLim.intervalx if which == "x" else ax.dataLim.intervaly)
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= 2.5 else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:.10g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.grid(alpha=0.12, which="minor", axis=which)


def _legend_below(ax: Any, n: int) -> None:
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(max(n, 1), 4), fontsize=8, frameon=False)


# --------------------------------------------------------------------------- quality vs cost


@dataclass
class _Point:
    label: str
    x: float
    y: float
    lo: float | None
    hi: float | None
    family: str
    precision: str
    front: bool = False


def _cost_points(comparison: Comparison, names: Mapping[str, str], cons: Constraints, axis: str) -> list[_Point]:
    pts = []
    for c in comparison.candidates:
        q = c.quality
        if not c.ok or q is None or q.value is None:
            continue
        pt = operating_point(c, cons)
        x = pt.p95 if axis == "latency" else pt.disk
        if x is None or x <= 0:
            continue
        iv = q.interval
        pts.append(_Point(names.get(c.name, c.name), x, q.value, iv[0] if iv else None, iv[1] if iv else None,
                          c.family, pt.precision))
    maximize = all(c.quality.higher_is_better for c in comparison.candidates if c.quality is not None)
    for i in pareto_front([(p.y, p.x) for p in pts], maximize_quality=maximize):
        pts[i].front = True
    return pts


def _draw_front(ax: Any, pts: Sequence[_Point]) -> list[tuple[float, float]]:
    """The Pareto front as a step line: the best quality reachable at each cost, extended to the right
    edge. Returns the corners of the line (data coordinates)."""
    front = sorted((p.x, p.y) for p in pts if p.front)
    if not front:
        return []
    x_right = ax.get_xlim()[1]
    corners = [front[0]]
    for (x, _), (x2, y2) in zip(front, front[1:]):
        corners += [(x2, corners[-1][1]), (x2, y2)]
    corners.append((x_right, corners[-1][1]))
    ax.plot([x for x, _ in corners], [y for _, y in corners], color=FRONT_COLOR, lw=1.4, alpha=0.8, zorder=1)
    ax.set_xlim(right=x_right)
    return corners


def _legend_handles(pts: Sequence[_Point], extra: list[Any]) -> list[Any]:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", color=FAMILY_COLORS.get(f, "#7f7f7f"), label=f)
               for f in dict.fromkeys(p.family for p in pts)]
    precisions = list(dict.fromkeys(p.precision for p in pts))
    handles += [Line2D([], [], ls="", marker=PRECISION_MARKERS.get(pr, "o"), color="#555", mfc="white", label=pr)
                for pr in precisions]
    return handles + extra


def _place_point_labels(fig: Any, ax: Any, pts: Sequence[_Point],
                        lines: Sequence[Sequence[tuple[float, float]]]) -> None:
    """Labels next to their points, clear of each other, the markers, the interval bars and ``lines``
    (polylines in data coordinates: the Pareto front, the majority-class line)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    to_px = ax.transData.transform
    anchors = [tuple(to_px((p.x, p.y))) for p in pts]
    sizes = []
    for p in pts:
        t = ax.text(0, 0, p.label, fontsize=LABEL_SIZE, fontweight="bold" if p.front else "normal")
        bb = t.get_window_extent(renderer)
        sizes.append((bb.width, bb.height))
        t.remove()
    bars = []
    for p, (px, _) in zip(pts, anchors):
        if p.lo is not None and p.hi is not None:
            y0, y1 = sorted((to_px((p.x, p.lo))[1], to_px((p.x, p.hi))[1]))
            bars.append((px - 2.0, y0, px + 2.0, y1))
    for line in lines:
        corners = [tuple(to_px(xy)) for xy in line]
        for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
            bars.append((min(x0, x1) - 2.0, min(y0, y1) - 2.0, max(x0, x1) + 2.0, max(y0, y1) + 2.0))
    bounds = tuple(ax.bbox.extents)
    placements = place_labels(anchors, sizes, bounds, bars, scale=DPI / 100)  # type: ignore[arg-type]
    for p, (px, py), place in zip(pts, anchors, placements):
        arrow = dict(arrowstyle="-", lw=0.6, color="#888", shrinkA=0, shrinkB=3) if place.far else None
        ax.annotate(p.label, xy=(p.x, p.y), xytext=(place.box[0] - px, place.box[1] - py),
                    textcoords="offset pixels", ha="left", va="bottom", fontsize=LABEL_SIZE,
                    fontweight="bold" if p.front else "normal", arrowprops=arrow, zorder=4,
                    bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.75))


def _quality_cost_figure(pts: list[_Point], *, xlabel: str, title: str, metric: str, maximize: bool,
                         majority: float | None = None) -> Any:
    """Quality (95 % interval bars) against a cost; front as a step line; labels placed without overlap."""
    from matplotlib.lines import Line2D

    fig = _figure(8.0, 5.4)
    ax = fig.add_subplot()
    for p in pts:
        yerr = [[p.y - p.lo], [p.hi - p.y]] if p.lo is not None and p.hi is not None else None
        ax.errorbar([p.x], [p.y], yerr=yerr, fmt=PRECISION_MARKERS.get(p.precision, "o"),
                    ms=8 if p.front else 6.5, capsize=2.5, elinewidth=0.9, color=FAMILY_COLORS.get(p.family, "#7f7f7f"),
                    mec="black" if p.front else "white", mew=0.9, alpha=0.95, zorder=3)
    if _spans_decades([p.x for p in pts]):
        _log_axis(ax)
    ax.margins(x=0.18, y=0.16)
    extra: list[Any] = []
    lines: list[list[tuple[float, float]]] = []
    if majority is not None:
        lo, hi = ax.get_ylim()
        if lo - (hi - lo) * 0.5 <= majority <= hi + (hi - lo) * 0.5:
            ax.axhline(majority, color="#999", ls=":", lw=1.2, zorder=0)
            x0, x1 = ax.get_xlim()
            lines.append([(x0, majority), (x1, majority)])
            extra.append(Line2D([], [], color="#999", ls=":", label=f"majority class ({majority:.3f})"))
        else:
            extra.append(Line2D([], [], ls="", label=f"majority class {majority:.3f} (off the axis)"))
    lines.append(_draw_front(ax, pts))
    if any(p.front for p in pts):
        extra.insert(0, Line2D([], [], color=FRONT_COLOR, lw=1.4, label="Pareto front"))
    if not maximize:
        ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{metric} on dev (95% interval)" + ("" if maximize else ", lower is better: axis inverted"))
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3, which="major")
    handles = _legend_handles(pts, extra)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8.5, frameon=False,
              ncol=min(len(handles), 5), columnspacing=1.2, handletextpad=0.4)
    fig.tight_layout()
    _place_point_labels(fig, ax, pts, lines)
    return fig


def _majority(comparison: Comparison, metric: str) -> float | None:
    value = ((comparison.dataset_profile or {}).get("baselines") or {}).get("majority_dev_accuracy")
    return float(value) if metric == "accuracy" and isinstance(value, (int, float)) else None


def quality_cost_figure(comparison: Comparison, axis: str, names: Mapping[str, str] | None = None,
                        constraints: Constraints | None = None) -> Any:
    """The matplotlib Figure of quality against ``axis`` ('latency' or 'size'), or None without data."""
    pts = _cost_points(comparison, names or {}, constraints or Constraints(), axis)
    if not pts:
        return None
    metric = next(c.quality.metric for c in comparison.candidates if c.quality is not None)
    maximize = all(c.quality.higher_is_better for c in comparison.candidates if c.quality is not None)
    if axis == "latency":
        xlabel, title = "p95 latency at batch 1, ms (at each candidate's fastest precision)", "Quality vs latency"
    else:
        xlabel, title = "weight size at that precision, MB", "Quality vs size"
    return _quality_cost_figure(pts, xlabel=xlabel + (", log scale" if _spans_decades([p.x for p in pts]) else ""),
                                title=title, metric=metric, maximize=maximize,
                                majority=_majority(comparison, metric))


def quality_latency_png(comparison: Comparison, names: Mapping[str, str] | None = None,
                        constraints: Constraints | None = None) -> bytes | None:
    """Dev quality (95 % interval bars) vs p95 latency at each candidate's deployment precision."""
    fig = quality_cost_figure(comparison, "latency", names, constraints)
    return None if fig is None else _png(fig)


def quality_size_png(comparison: Comparison, names: Mapping[str, str] | None = None,
                     constraints: Constraints | None = None) -> bytes | None:
    """Dev quality vs weight size at the same precision."""
    fig = quality_cost_figure(comparison, "size", names, constraints)
    return None if fig is None else _png(fig)


# --------------------------------------------------------------------------- curves and distributions


def _phases(comparison: Comparison) -> list[str]:
    order = {"pretrain": 0, "train": 1, "finetune": 2}
    found = {str(p.get("phase") or "train") for c in comparison.candidates for p in c.curves}
    return sorted(found, key=lambda ph: (order.get(ph, 3), ph))


def training_curves_png(comparison: Comparison, phase: str, names: Mapping[str, str] | None = None,
                        value: str = "loss") -> bytes | None:
    """One phase's training loss (``value='loss'``) or dev metric (``'metric'``) against step, per candidate."""
    names = names or {}
    series = []
    for c in comparison.candidates:
        pts = [p for p in c.curves if str(p.get("phase") or "train") == phase and p.get(value) is not None]
        if pts:
            series.append((c, pts))
    if not series:
        return None
    colors = _candidate_colors([c.name for c in comparison.candidates])
    fig = _figure(6.0, 3.8)
    ax = fig.add_subplot()
    for c, pts in series:
        ax.plot([p["step"] for p in pts], [p[value] for p in pts], color=colors[c.name], lw=1.3,
                marker="o" if value == "metric" or len(pts) < 12 else None, ms=3, label=names.get(c.name, c.name))
    metric = next((c.quality.metric for c, _ in series if c.quality), "metric")
    what = "training loss" if value == "loss" else f"dev {metric}"
    ax.set_title(f"{_PHASE_TITLES.get(phase, phase)}: {what}", fontsize=11)
    ax.set_xlabel("step")
    ax.set_ylabel(what)
    ax.grid(alpha=0.3)
    _legend_below(ax, len(series))
    return _png(fig)


def latency_distribution_png(comparison: Comparison, names: Mapping[str, str] | None = None) -> bytes | None:
    """Horizontal box plots of the raw batch-1 latency samples: one row per candidate, a box per precision."""
    names = names or {}
    cands = [c for c in comparison.candidates if any(c.latency_samples.values())]
    if not cands:
        return None
    precisions = list(dict.fromkeys(p for c in cands for p, s in c.latency_samples.items() if s))
    fig = _figure(8.0, 1.4 + 0.22 * len(cands) * max(1.5, len(precisions) * 0.75))
    ax = fig.add_subplot()
    width = 0.8 / len(precisions)
    cmap = _candidate_colors(precisions)
    every = []
    for k, prec in enumerate(precisions):
        rows = [(i, c.latency_samples[prec]) for i, c in enumerate(cands) if c.latency_samples.get(prec)]
        pos = [len(cands) - 1 - i + (len(precisions) - 1) / 2 * width - k * width for i, _ in rows]
        data = [s for _, s in rows]
        every += [x for s in data for x in s]
        bp = ax.boxplot(data, positions=pos, widths=width * 0.85, vert=False, whis=(5, 95), showfliers=True,
                        patch_artist=True, manage_ticks=False, flierprops=dict(ms=2, alpha=0.5),
                        medianprops=dict(color="black", lw=1.2))
        for box in bp["boxes"]:
            box.set(facecolor=cmap[prec], alpha=0.7)
        ax.plot([], [], "s", color=cmap[prec], label=prec)
    ax.set_yticks(range(len(cands)))
    ax.set_yticklabels([names.get(c.name, c.name) for c in reversed(cands)], fontsize=8)
    if _spans_decades(every):
        _log_axis(ax)
    ax.set_xlabel("ms per call at batch 1" + (", log scale" if ax.get_xscale() == "log" else ""))
    ax.set_title("Latency at batch 1 (box: p25-p75, whiskers: p5-p95)", fontsize=11)
    ax.grid(axis="x", alpha=0.3, which="major")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, title="precision",
              title_fontsize=8)
    return _png(fig)


def learning_curve_png(points: Sequence[LearningCurvePoint], names: Mapping[str, str] | None = None,
                       metric: str = "quality") -> bytes | None:
    """Dev quality against the number of training examples, a line (and 95 % band) per candidate."""
    if not points:
        return None
    names = names or {}
    per_class = all(p.per_class is not None for p in points)
    order = list(dict.fromkeys(p.candidate for p in points))
    colors = _candidate_colors(order)
    fig = _figure(8.0, 4.6)
    ax = fig.add_subplot()
    for name in order:
        pts = sorted((p for p in points if p.candidate == name), key=lambda p: p.train_size)
        xs = [float(p.per_class if per_class else p.train_size) for p in pts]  # type: ignore[arg-type]
        ax.plot(xs, [p.quality for p in pts], marker="o", ms=4, lw=1.5, color=colors[name],
                label=names.get(name, name))
        if all(p.low is not None and p.high is not None for p in pts):
            ax.fill_between(xs, [p.low for p in pts], [p.high for p in pts], color=colors[name], alpha=0.12, lw=0)
    xs_all = [float(p.per_class if per_class else p.train_size) for p in points]  # type: ignore[arg-type]
    if min(xs_all) > 0 and max(xs_all) / min(xs_all) > 4:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(_plain_ticks())
    ax.set_xlabel(("training examples per class" if per_class else "training examples") + " (log scale)"
                  if ax.get_xscale() == "log" else ("training examples per class" if per_class else "training examples"))
    ax.set_ylabel(f"{metric} on dev")
    ax.set_title("Learning curve: where the winner changes with data size", fontsize=11)
    ax.grid(alpha=0.3, which="both")
    _legend_below(ax, len(order))
    return _png(fig)


def _plain_ticks() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")


def reliability_png(bins: Sequence[ReliabilityBin], calibrated: Sequence[ReliabilityBin] | None = None,
                    title: str = "Reliability") -> bytes | None:
    """Accuracy against confidence per bin (bars), the diagonal of perfect calibration, ECE in the legend;
    ``calibrated``: the same after temperature scaling, drawn as a step line."""
    used = [b for b in bins if b.count > 0]
    if not used:
        return None
    fig = _figure(4.6, 4.2)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color="#888", lw=1, label="perfectly calibrated")
    ax.bar([(b.lower + b.upper) / 2 for b in used], [b.accuracy for b in used],
           width=[b.upper - b.lower for b in used], color="#3b6fb6", alpha=0.75, edgecolor="white",
           label=f"raw (ECE {expected_calibration_error(bins):.3f})")
    ax.scatter([b.confidence for b in used], [b.accuracy for b in used], s=10, color="#1d3d6b", zorder=3)
    if calibrated:
        cal = [b for b in calibrated if b.count > 0]
        ax.step([b.confidence for b in cal], [b.accuracy for b in cal], where="mid", color=FRONT_COLOR, lw=1.5,
                label=f"temperature-scaled (ECE {expected_calibration_error(calibrated):.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    return _png(fig)


# --------------------------------------------------------------------------- all of them


def all_plots(comparison: Comparison, names: Mapping[str, str] | None = None,
              constraints: Constraints | None = None) -> list[Plot]:
    """Every comparison-wide figure that has data, in the order shown (reliability diagrams are per
    candidate: :func:`candidate_plots`)."""
    names = names or {}
    metric = next((c.quality.metric for c in comparison.candidates if c.quality is not None), "quality")
    out: list[Plot] = []
    for title, png in (("Quality vs latency", quality_latency_png(comparison, names, constraints)),
                       ("Quality vs size", quality_size_png(comparison, names, constraints)),
                       ("Learning curve", learning_curve_png(learning_curve_points(comparison), names, metric))):
        if png:
            out.append(Plot(title, png))
    for phase in _phases(comparison):
        for value in ("loss", "metric"):
            png = training_curves_png(comparison, phase, names, value)
            if png:
                what = "loss" if value == "loss" else f"dev {metric}"
                out.append(Plot(f"Training curve: {_PHASE_TITLES.get(phase, phase)} {what}", png, wide=False))
    png = latency_distribution_png(comparison, names)
    if png:
        out.append(Plot("Latency distribution", png))
    return out


def candidate_plots(comparison: Comparison, name: str, names: Mapping[str, str] | None = None) -> list[Plot]:
    """The figures of one candidate's section: its reliability diagram when calibration was measured."""
    raw, calibrated = reliability_bins(comparison.candidate(name))
    png = reliability_png(raw, calibrated or None, title=f"Reliability: {(names or {}).get(name, name)}")
    return [Plot("Reliability diagram", png, wide=False)] if png else []
