"""Report figures as PNG bytes (matplotlib, Agg canvas; optional extra ``plots``).

Every function returns ``None`` when there is nothing to draw. Figures are drawn on
``matplotlib.figure.Figure`` objects with the Agg canvas directly, so pyplot's global
state and the user's backend are never touched.
"""

from __future__ import annotations

import importlib.util
import io
from typing import Any

from gptbert.report import candidate_latency, pareto_front
from gptbert.results import Comparison

__all__ = [
    "all_plots",
    "available",
    "latency_distribution_png",
    "quality_latency_png",
    "size_bars_png",
    "training_curves_png",
]


def available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def quality_latency_png(comparison: Comparison) -> bytes | None:
    """Dev quality (with 95 % CI bars) vs p95 latency; the Pareto front highlighted."""
    ok = [c for c in comparison.candidates if c.ok and c.quality is not None and c.quality.value is not None]
    pts = [(c, *candidate_latency(c)) for c in ok]
    pts = [(c, lat, prec) for c, lat, prec in pts if lat is not None]
    if not pts:
        return None
    maximize = all(c.quality.higher_is_better for c, _, _ in pts)  # type: ignore[union-attr]
    front = set(pareto_front([(c.quality.value, lat) for c, lat, _ in pts], maximize_quality=maximize))  # type: ignore[union-attr]
    fig = _figure(6.5, 4.2)
    ax = fig.add_subplot()
    for i, (c, lat, prec) in enumerate(pts):
        q = c.quality
        assert q is not None and q.value is not None
        iv = q.interval
        yerr = [[q.value - iv[0]], [iv[1] - q.value]] if iv else None
        on = i in front
        ax.errorbar([lat], [q.value], yerr=yerr, fmt="o", ms=8 if on else 6, capsize=3,
                    color="tab:red" if on else "tab:blue", alpha=0.9)
        ax.annotate(f"{c.name} ({prec})", (lat, q.value), textcoords="offset points", xytext=(6, 6), fontsize=8)
    fx = sorted((pts[i][1], pts[i][0].quality.value) for i in front)  # type: ignore[union-attr]
    if len(fx) > 1:
        ax.plot([x for x, _ in fx], [y for _, y in fx], "--", color="tab:red", lw=1, label="Pareto front")
        ax.legend(loc="best", fontsize=8)
    lats = [lat for _, lat, _ in pts]
    if min(lats) > 0 and max(lats) / min(lats) > 20:
        ax.set_xscale("log")
    metric = pts[0][0].quality.metric  # type: ignore[union-attr]
    ax.set_xlabel("p95 latency at batch 1, ms (fastest measured precision)")
    ax.set_ylabel(f"{metric} (dev)" + ("" if maximize else ", lower is better"))
    ax.set_title("Quality vs latency (red: Pareto front)")
    ax.grid(alpha=0.3)
    return _png(fig)


def size_bars_png(comparison: Comparison) -> bytes | None:
    """Weight size per candidate at fp32, bf16 and int8."""
    cands = [c for c in comparison.candidates if c.size_mb]
    if not cands:
        return None
    precisions = [p for p in ("fp32", "bf16", "int8") if any(p in c.size_mb for c in cands)]
    fig = _figure(max(5.0, 1.1 * len(cands) + 2), 3.8)
    ax = fig.add_subplot()
    width = 0.8 / len(precisions)
    for k, prec in enumerate(precisions):
        xs = [i + (k - (len(precisions) - 1) / 2) * width for i in range(len(cands))]
        ax.bar(xs, [c.size_mb.get(prec, 0.0) for c in cands], width=width, label=prec)
    ax.set_xticks(range(len(cands)))
    ax.set_xticklabels([c.name for c in cands], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("MB")
    ax.set_title("Model size by precision")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def training_curves_png(comparison: Comparison) -> bytes | None:
    """Training loss (and dev metric where recorded) against step, per phase."""
    cands = [c for c in comparison.candidates if c.curves]
    if not cands:
        return None
    order = {"pretrain": 0, "train": 1, "finetune": 2}
    phases = sorted({str(p.get("phase") or "train") for c in cands for p in c.curves},
                    key=lambda ph: (order.get(ph, 3), ph))
    has_metric = any(p.get("metric") is not None for c in cands for p in c.curves)
    ncols = len(phases) + (1 if has_metric else 0)
    fig = _figure(4.2 * ncols, 3.6)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax, phase in zip(axes, phases):
        for c in cands:
            pts = [p for p in c.curves if str(p.get("phase") or "train") == phase and p.get("loss") is not None]
            if pts:
                ax.plot([p["step"] for p in pts], [p["loss"] for p in pts], label=c.name, lw=1.2)
        ax.set_title(f"{phase} loss")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if has_metric:
        ax = axes[-1]
        metric = next((c.quality.metric for c in cands if c.quality), "metric")
        for c in cands:
            pts = [p for p in c.curves if p.get("metric") is not None]
            if pts:
                ax.plot([p["step"] for p in pts], [p["metric"] for p in pts], marker="o", ms=3, label=c.name)
        ax.set_title(f"dev {metric}")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _png(fig)


def latency_distribution_png(comparison: Comparison) -> bytes | None:
    """Box plot of the raw batch-1 latency samples per candidate and precision."""
    series = [(f"{c.name}\n{prec}", samples) for c in comparison.candidates
              for prec, samples in c.latency_samples.items() if samples]
    if not series:
        return None
    fig = _figure(max(5.0, 0.9 * len(series) + 2), 4.0)
    ax = fig.add_subplot()
    ax.boxplot([s for _, s in series], whis=(5, 95), showfliers=True)
    ax.set_xticks(range(1, len(series) + 1))
    ax.set_xticklabels([n for n, _ in series], fontsize=7)
    ax.set_ylabel("ms")
    ax.set_title("Latency at batch 1 (whiskers: p5-p95)")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def all_plots(comparison: Comparison) -> dict[str, bytes]:
    """{title: PNG bytes} of every figure that has data."""
    out: dict[str, bytes] = {}
    for title, fn in (
        ("Quality vs latency", quality_latency_png),
        ("Model size", size_bars_png),
        ("Training curves", training_curves_png),
        ("Latency distribution", latency_distribution_png),
    ):
        png = fn(comparison)
        if png:
            out[title] = png
    return out
