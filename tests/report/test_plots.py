"""Figures: label placement without overlap (2, 8 and 15 candidates, identical points), log axes,
the Pareto front as a step line, learning curves and reliability diagrams on synthetic data."""

from __future__ import annotations

import importlib.util
import itertools
import math

import pytest

from gptbert.report.labels import overlap, place_labels
from gptbert.report.series import LearningCurvePoint, ReliabilityBin, expected_calibration_error
from tests.report.comparisons import crowded, realistic

HAS_MPL = importlib.util.find_spec("matplotlib") is not None
needs_mpl = pytest.mark.skipif(not HAS_MPL, reason="matplotlib not installed")
PNG = b"\x89PNG\r\n\x1a\n"


def test_labels_of_identical_points_do_not_overlap():
    anchors = [(300.0, 200.0)] * 15 + [(303.0, 201.0), (500.0, 100.0)]
    sizes = [(70.0, 12.0)] * len(anchors)
    bounds = (0.0, 0.0, 800.0, 500.0)
    placed = place_labels(anchors, sizes, bounds)
    for a, b in itertools.combinations(placed, 2):
        assert overlap(a.box, b.box) == 0.0
    for p in placed:
        assert bounds[0] <= p.box[0] and p.box[2] <= bounds[2] and bounds[1] <= p.box[1] and p.box[3] <= bounds[3]
    assert not placed[-1].far  # the lonely point keeps its label next to it
    assert sum(p.far for p in placed) >= 10  # the crowd fans out, with leader lines
    assert placed == place_labels(anchors, sizes, bounds)  # deterministic


def test_labels_keep_clear_of_markers_and_obstacles():
    anchors = [(100.0, 100.0), (140.0, 100.0)]
    bar = (95.0, 60.0, 105.0, 140.0)
    placed = place_labels(anchors, [(30.0, 10.0)] * 2, (0.0, 0.0, 400.0, 300.0), obstacles=[bar], marker=5.0)
    for p in placed:
        assert overlap(p.box, bar) == 0.0
        for x, y in anchors:
            assert overlap(p.box, (x - 5, y - 5, x + 5, y + 5)) == 0.0


def _label_boxes(fig):
    """The axes and the extents of its label texts (without their leader lines)."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    return ax, [Text.get_window_extent(t, renderer) for t in ax.texts]


@needs_mpl
@pytest.mark.parametrize("n", [2, 8, 15])
@pytest.mark.parametrize("axis", ["latency", "size"])
def test_scatter_labels_never_overlap(n, axis):
    from gptbert.report import display_names
    from gptbert.report.plots import quality_cost_figure

    comp = crowded(n)
    fig = quality_cost_figure(comp, axis, display_names(comp))
    ax, boxes = _label_boxes(fig)
    assert len(boxes) == n
    for a, b in itertools.combinations(boxes, 2):
        assert overlap((a.x0, a.y0, a.x1, a.y1), (b.x0, b.y0, b.x1, b.y1)) < 1.0
    inside = ax.bbox
    for b in boxes:
        assert inside.x0 - 1 <= b.x0 and b.x1 <= inside.x1 + 1 and inside.y0 - 1 <= b.y0 and b.y1 <= inside.y1 + 1
    # 15 candidates spread over four decades of latency: a log axis; 2 close ones: linear
    if axis == "latency":
        assert ax.get_xscale() == ("log" if n == 15 else "linear")


@needs_mpl
def test_pareto_front_is_a_step_line():
    from gptbert.report import display_names
    from gptbert.report.plots import FRONT_COLOR, quality_cost_figure

    comp = realistic()
    ax = quality_cost_figure(comp, "latency", display_names(comp)).axes[0]
    front = [line for line in ax.lines if line.get_color() == FRONT_COLOR]
    assert len(front) == 1
    xs, ys = front[0].get_xdata(), front[0].get_ydata()
    # tfidf-lr 0.14 ms, bert-mini 1.9, gpt-mini 2.3, MiniLM 3.6: each step horizontal then vertical
    assert len(xs) == 2 * 4
    for i in range(1, len(xs) - 1):
        assert xs[i] == xs[i - 1] or ys[i] == ys[i - 1]
    assert all(b >= a for a, b in zip(ys, ys[1:])) and xs[-1] == ax.get_xlim()[1]


@needs_mpl
def test_axis_labels_are_inside_the_png():
    """bbox_inches='tight': the x-axis label and the legend are never cut off."""
    import io

    from matplotlib.image import imread

    from gptbert.report.plots import quality_latency_png

    png = quality_latency_png(crowded(15))
    assert png is not None and png[:8] == PNG
    img = imread(io.BytesIO(png))
    assert img.shape[1] > 900 and img.shape[0] > 500
    # the outermost rows and columns are background: nothing is drawn up to the edge
    for edge in (img[0], img[-1], img[:, 0], img[:, -1]):
        assert edge[:, :3].min() > 0.95


def _curve() -> list[LearningCurvePoint]:
    out = []
    for name, qs in (("tfidf-lr", (0.6, 0.7, 0.75, 0.8)), ("minilm", (0.5, 0.65, 0.82, 0.9))):
        for n, q in zip((8, 32, 128, 1000), qs):
            out.append(LearningCurvePoint(name, train_size=2 * n, per_class=n, quality=q, low=q - 0.05, high=q + 0.04))
    return out


def _bins(shift: float) -> list[ReliabilityBin]:
    return [ReliabilityBin(k / 10, (k + 1) / 10, confidence=k / 10 + 0.05,
                           accuracy=min(1.0, max(0.0, k / 10 + 0.05 - shift)), count=10 * k) for k in range(10)]


def test_ece_of_calibrated_and_overconfident_bins():
    assert expected_calibration_error(_bins(0.0)) == pytest.approx(0.0)
    assert expected_calibration_error(_bins(0.2)) > 0.1
    assert math.isnan(expected_calibration_error([]))
    with pytest.raises(ValueError):
        ReliabilityBin(0.5, 0.4, 0.45, 0.4, 3)


@needs_mpl
def test_learning_curve_and_reliability_png():
    from gptbert.report.plots import learning_curve_png, reliability_png

    png = learning_curve_png(_curve(), {"minilm": "MiniLM"}, "accuracy")
    assert png is not None and png[:8] == PNG
    assert learning_curve_png([]) is None
    assert reliability_png(_bins(0.2), _bins(0.02), title="x")[:8] == PNG  # type: ignore[index]
    assert reliability_png([]) is None
    assert reliability_png([ReliabilityBin(0.0, 0.5, 0.3, 0.2, 0)]) is None  # no examples


@needs_mpl
def test_report_draws_learning_curve_and_reliability_only_when_present():
    from gptbert.report.plots import all_plots, candidate_plots

    comp = realistic()
    titles = [p.title for p in all_plots(comp)]
    assert titles[:3] == ["Quality vs latency", "Quality vs size", "Learning curve"]
    assert [p.title for p in candidate_plots(comp, "bert-mini")] == ["Reliability diagram"]
    assert candidate_plots(comp, "gpt-mini") == []
    for c in comp.candidates:
        c.extra.pop("learning_curve", None)
    assert "Learning curve" not in [p.title for p in all_plots(comp)]
