"""Where to put point labels on a scatter plot so that they overlap neither each other nor the points.

Pure geometry in display (pixel) coordinates, no matplotlib: :func:`place_labels` tries, for
each label in turn, positions around its point on rings of growing radius (right, left, above,
below and the diagonals) and keeps the first that overlaps nothing placed so far, no marker and
stays inside the plot; when every position overlaps something it keeps the one that overlaps
least. Labels placed away from their point get a leader line (:attr:`Placement.far`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Box", "Placement", "overlap", "place_labels"]

Box = tuple[float, float, float, float]
"""(x0, y0, x1, y1) with x0 <= x1 and y0 <= y1, pixels (y up)."""

RADII = (6.0, 14.0, 26.0, 40.0, 56.0, 76.0, 100.0, 130.0, 165.0, 205.0)
"""Distances (px) from the point to the nearest edge of its label, tried in this order."""
DIRECTIONS = (0, 180, 45, -45, 135, -135, 90, -90, 22, -22, 158, -158, 68, -68, 112, -112)
"""Angles (degrees, 0 = right of the point) tried on each ring, in this order."""
FAR = 14.0
"""A label farther than this (px) from its point gets a leader line."""


@dataclass(frozen=True)
class Placement:
    """A label's box and whether it sits far enough from its point to need a leader line."""

    box: Box
    far: bool

    @property
    def offset(self) -> tuple[float, float]:
        """Lower-left corner of the box (px)."""
        return self.box[0], self.box[1]


def overlap(a: Box, b: Box) -> float:
    """Area of the intersection of two boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _outside(box: Box, bounds: Box) -> float:
    """Area of ``box`` outside ``bounds``."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    return area - overlap(box, bounds)


def _box_at(x: float, y: float, w: float, h: float, angle: float, r: float) -> Box:
    """The w x h box whose edge is ``r`` px from (x, y) in direction ``angle``."""
    dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    # centre of the box on the ray, pushed out so that its nearest edge is about r away
    cx = x + dx * (r + w / 2 * abs(dx) ** 0.5)
    cy = y + dy * (r + h / 2 * abs(dy) ** 0.5)
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _distance(box: Box, x: float, y: float) -> float:
    dx = max(box[0] - x, 0.0, x - box[2])
    dy = max(box[1] - y, 0.0, y - box[3])
    return math.hypot(dx, dy)


def place_labels(anchors: Sequence[tuple[float, float]], sizes: Sequence[tuple[float, float]], bounds: Box,
                 obstacles: Sequence[Box] = (), marker: float = 5.0, pad: float = 1.5,
                 scale: float = 1.0) -> list[Placement]:
    """A box for each label (``sizes[i]`` = (width, height) px) near ``anchors[i]``.

    ``bounds``: where labels must stay (the axes); ``obstacles``: other boxes to keep clear of
    (error bars, lines); ``marker``: half-size of the square kept clear around every point;
    ``pad``: gap kept between labels; ``scale``: multiplies every distance (:data:`RADII`, :data:`FAR`,
    ``marker``, ``pad``; e.g. dots per inch / 100 for a figure drawn at high resolution). Labels are placed from the most crowded point outwards,
    so that the points with many neighbours get the near positions first.
    """
    n = len(anchors)
    marker, pad = marker * scale, pad * scale
    blocked: list[Box] = [(x - marker, y - marker, x + marker, y + marker) for x, y in anchors] + list(obstacles)

    def crowd(i: int) -> float:
        x, y = anchors[i]
        return -sum(1.0 / (1.0 + math.hypot(x - u, y - v)) for j, (u, v) in enumerate(anchors) if j != i)

    order = sorted(range(n), key=lambda i: (crowd(i), anchors[i][0], anchors[i][1]))
    placed: dict[int, Placement] = {}
    labels: list[Box] = []
    for i in order:
        x, y = anchors[i]
        w, h = sizes[i][0] + 2 * pad, sizes[i][1] + 2 * pad
        best: tuple[float, Box] | None = None
        for r in (radius * scale for radius in RADII):
            for angle in DIRECTIONS:
                box = _box_at(x, y, w, h, angle, r)
                cost = (sum(overlap(box, b) for b in labels) * 4 + sum(overlap(box, b) for b in blocked)
                        + _outside(box, bounds) * 8)
                if best is None or cost < best[0] - 1e-9:
                    best = (cost, box)
                if cost == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None
        box = best[1]
        inner = (box[0] + pad, box[1] + pad, box[2] - pad, box[3] - pad)
        labels.append(box)
        placed[i] = Placement(inner, _distance(inner, x, y) > FAR * scale)
    return [placed[i] for i in range(n)]
