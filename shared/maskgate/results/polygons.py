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

from maskgate.results.components import BoolArray, Component, IntArray

TOLERANCE = 0.5  # pixels: the greatest distance a simplified edge may pass from the traced outline
FloatArray = npt.NDArray[np.float64]
Ring = list[tuple[int, int]]


def _edges(crop: BoolArray) -> dict[int, list[int]]:
    """Boundary edges between set and unset pixels, walked with the set pixel on the right, keyed by
    start corner (``row * (w + 1) + col``): from the changes across and down the padded crop."""
    height, width = crop.shape
    padded = np.zeros((height + 2, width + 2), dtype=np.int8)
    padded[1:-1, 1:-1] = crop
    stride = width + 1
    across = np.diff(padded[1:-1], axis=1)  # [y, x]: pixel (y, x) minus its left neighbour
    rows, cols = np.nonzero(across)
    left = across[rows, cols] == 1  # a left side (walked up), else the right side of (y, x - 1) (down)
    top_corner, bottom_corner = rows * stride + cols, (rows + 1) * stride + cols
    starts = [np.where(left, bottom_corner, top_corner)]
    ends = [np.where(left, top_corner, bottom_corner)]
    down = np.diff(padded[:, 1:-1], axis=0)  # [y, x]: pixel (y, x) minus the one above
    rows, cols = np.nonzero(down)
    top = down[rows, cols] == 1  # a top side (walked right), else the bottom side of (y - 1, x) (left)
    left_corner, right_corner = rows * stride + cols, rows * stride + cols + 1
    starts.append(np.where(top, left_corner, right_corner))
    ends.append(np.where(top, right_corner, left_corner))
    out: dict[int, list[int]] = {}
    for a, b in zip(np.concatenate(starts).tolist(), np.concatenate(ends).tolist(), strict=True):
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


def _farthest(closed: FloatArray, starts: IntArray, ends: IntArray) -> tuple[IntArray, FloatArray]:
    """For each segment (start, end) of the closed ring: its inner point farthest from the chord, and
    that distance; all segments at once."""
    counts = ends - starts - 1
    offsets = np.cumsum(counts) - counts
    inner = np.repeat(starts, counts) + np.arange(int(counts.sum())) - np.repeat(offsets, counts) + 1
    a, b = closed[np.repeat(starts, counts)], closed[np.repeat(ends, counts)]
    span, offset = b - a, closed[inner] - a
    length = np.hypot(span[:, 0], span[:, 1])
    cross = np.abs(span[:, 0] * offset[:, 1] - span[:, 1] * offset[:, 0])
    distance = np.where(length > 0, cross / np.where(length > 0, length, 1.0), np.hypot(*offset.T))
    worst = np.maximum.reduceat(distance, offsets)
    at_worst = np.flatnonzero(distance == np.repeat(worst, counts))
    _, first = np.unique(np.searchsorted(offsets, at_worst, side="right") - 1, return_index=True)
    return inner[at_worst[first]], worst


def simplify(points: FloatArray, tolerance: float = TOLERANCE) -> FloatArray:
    """Douglas-Peucker on a closed ring (first point not repeated), keeping at least three points.
    Every open segment is split in the same round, so a ring takes a few dozen vectorised rounds."""
    points = corners(points)
    if len(points) <= 3:
        return points
    closed = np.vstack([points, points[:1]])
    keep = np.zeros(len(closed), dtype=np.bool_)
    far = int(np.argmax(((points - points[0]) ** 2).sum(axis=1)))
    keep[[0, far, len(points)]] = True
    settled = np.zeros(len(closed), dtype=np.bool_)  # by start index: a segment within tolerance
    while True:
        kept = np.flatnonzero(keep)
        starts, ends = kept[:-1], kept[1:]
        open_ = (ends - starts > 1) & ~settled[starts]
        if not open_.any():
            break
        starts, ends = starts[open_], ends[open_]
        split_at, worst = _farthest(closed, starts, ends)
        settled[starts[worst <= tolerance]] = True
        keep[split_at[worst > tolerance]] = True
    return closed[keep][:-1]


def _join(outline: FloatArray, hole: FloatArray) -> FloatArray:
    """One ring: the outline, a cut from its point nearest the hole's first point, around the hole,
    and back (the cut is walked both ways, so under the even-odd rule it adds and removes nothing)."""
    o = int(np.argmin(((outline - hole[0]) ** 2).sum(axis=1)))
    return np.vstack([outline[: o + 1], hole, hole[:1], outline[o:]])


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
    return [np.round(joined.reshape(-1), 2).tolist()]
