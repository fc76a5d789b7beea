"""Polygons of a component: its outline traced along pixel edges, simplified, holes joined in.

Vertices lie on pixel corners, in the same coordinates as the bounding box (pixel ``(col, row)``
spans ``[col, col + 1) × [row, row + 1)``). Each ring is simplified with Douglas-Peucker at
``TOLERANCE`` pixels. COCO polygons cannot hold holes as rings of their own (readers unite an
annotation's rings), so each hole is joined to the outline by a zero-width cut: the one ring then
fills with the hole open under the even-odd rule pycocotools rasterizes with. The RLE stays exact.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from maskgate.results.components import BoolArray, Component

TOLERANCE = 0.5  # pixels: the greatest distance a simplified edge may pass from the traced outline
FloatArray = npt.NDArray[np.float64]
Ring = list[tuple[int, int]]

# (dy, dx) of a pixel's neighbour, and that side's edge as corner offsets, walked with the pixel on its right
_SIDES = (
    ((-1, 0), (0, 0), (0, 1)),  # top: left to right
    ((0, 1), (0, 1), (1, 1)),  # right: top to bottom
    ((1, 0), (1, 1), (1, 0)),  # bottom: right to left
    ((0, -1), (1, 0), (0, 0)),  # left: bottom to top
)


def _edges(crop: BoolArray) -> dict[int, list[int]]:
    """Boundary edges between set and unset pixels, keyed by start corner (``row * (w + 1) + col``)."""
    height, width = crop.shape
    padded = np.zeros((height + 2, width + 2), dtype=np.bool_)
    padded[1:-1, 1:-1] = crop
    stride = width + 1
    out: dict[int, list[int]] = {}
    for (dy, dx), (ay, ax), (by, bx) in _SIDES:
        outside = ~padded[1 + dy : height + 1 + dy, 1 + dx : width + 1 + dx]
        rows, cols = np.nonzero(crop & outside)
        for a, b in zip(
            ((rows + ay) * stride + cols + ax).tolist(),
            ((rows + by) * stride + cols + bx).tolist(),
            strict=True,
        ):
            out.setdefault(a, []).append(b)
    return out


def _pick(came_from: int, here: int, choices: list[int], stride: int) -> int:
    """At a corner where two diagonal pixels meet, turn left: that keeps them in one outline."""
    if len(choices) == 1:
        return choices.pop()
    heading = here - came_from
    left = {1: -stride, stride: 1, -1: stride, -stride: -1}[heading]
    chosen = here + left if here + left in choices else choices[0]
    choices.remove(chosen)
    return chosen


def trace(crop: BoolArray) -> list[Ring]:
    """Closed rings of corner points (x, y) in the crop: the outline first, then one per hole."""
    stride = crop.shape[1] + 1
    edges = _edges(crop)
    rings: list[Ring] = []
    for start in sorted(edges):  # the smallest key is the outline's top-left corner
        while edges.get(start):
            ring, here = [start], edges[start].pop()
            previous = start
            while here != start:
                ring.append(here)
                previous, here = here, _pick(previous, here, edges[here], stride)
            rings.append([(v % stride, v // stride) for v in ring])
    return rings


def corners(points: FloatArray) -> FloatArray:
    """The ring without the points in the middle of straight runs."""
    ahead = np.roll(points, -1, axis=0) - points
    behind = points - np.roll(points, 1, axis=0)
    turning = ahead[:, 0] * behind[:, 1] - ahead[:, 1] * behind[:, 0] != 0
    kept: FloatArray = points[turning]
    return kept


def simplify(points: FloatArray, tolerance: float = TOLERANCE) -> FloatArray:
    """Douglas-Peucker on a closed ring (first point not repeated), keeping at least three points."""
    points = corners(points)
    if len(points) <= 3:
        return points
    far = int(np.argmax(((points - points[0]) ** 2).sum(axis=1)))
    keep = np.zeros(len(points), dtype=np.bool_)
    keep[[0, far]] = True
    closed = np.vstack([points, points[:1]])
    stack = [(0, far), (far, len(points))]
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        a, b = closed[first], closed[last]
        inner = closed[first + 1 : last]
        span = b - a
        length = float(np.hypot(*span))
        offset = inner - a
        if length == 0:
            distance = np.hypot(offset[:, 0], offset[:, 1])
        else:
            distance = np.abs(span[0] * offset[:, 1] - span[1] * offset[:, 0]) / length
        worst = int(np.argmax(distance))
        if distance[worst] > tolerance:
            split = first + 1 + worst
            keep[split % len(points)] = True
            stack += [(first, split), (split, last)]
    kept = points[keep]
    if len(kept) < 3:
        return points[np.sort(np.argsort(-((points - points[0]) ** 2).sum(axis=1))[:3])]
    return kept


def _join(outline: FloatArray, hole: FloatArray) -> FloatArray:
    """One ring: the outline, a cut to the hole's nearest point, around the hole, and back."""
    distance = ((outline[:, None, :] - hole[None, :, :]) ** 2).sum(axis=2)
    o, h = np.unravel_index(int(np.argmin(distance)), distance.shape)
    around = np.vstack([hole[h:], hole[: h + 1]])
    return np.vstack([outline[: o + 1], around, outline[o:]])


def polygons(component: Component, tolerance: float = TOLERANCE) -> list[list[float]]:
    """The component's COCO polygons: one ring ``[x1, y1, x2, y2, …]`` with any holes joined in."""
    rings = [
        simplify(
            np.asarray(ring, dtype=np.float64) + np.array([component.x, component.y], dtype=np.float64),
            tolerance,
        )
        for ring in trace(component.crop())
    ]
    joined = rings[0]
    for hole in rings[1:]:
        joined = _join(joined, hole)
    return [[round(float(v), 2) for v in joined.reshape(-1)]]
