"""The 8-connected components of a binary mask, found on its row runs.

A mask is cut into runs (row, start, end) of set pixels; runs in neighbouring rows that touch, side by
side or diagonally, are joined with a union-find. Work grows with the number of runs, not of pixels, so
a 12-megapixel mask of a few objects is labelled in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Runs:
    """The runs of set pixels of a mask, in row-major order: row, start column, end column (exclusive)."""

    rows: IntArray
    starts: IntArray
    ends: IntArray


@dataclass(frozen=True)
class Component:
    """One connected component: its runs (row-major) and the box around them."""

    runs: Runs
    x: int
    y: int
    width: int
    height: int

    @property
    def area(self) -> int:
        return int((self.runs.ends - self.runs.starts).sum())

    def crop(self) -> BoolArray:
        """The component's own pixels in its bounding box (other components' pixels left out)."""
        crop = np.zeros((self.height, self.width), dtype=np.bool_)
        for row, start, end in zip(self.runs.rows, self.runs.starts, self.runs.ends, strict=True):
            crop[row - self.y, start - self.x : end - self.x] = True
        return crop


def row_runs(mask: BoolArray) -> Runs:
    """Every run of set pixels, row by row (one pass over the mask, padded with a clear column each side)."""
    height, width = mask.shape
    stride = width + 2
    padded = np.zeros((height, stride), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded.reshape(-1))
    changes = np.flatnonzero(step) + 1  # the first pixel after each change, in the padded rows
    rising = step[changes - 1] == 1
    starts, ends = changes[rising], changes[~rising]
    return Runs(rows=starts // stride, starts=starts % stride - 1, ends=ends % stride - 1)


def _touching(runs: Runs, width: int) -> tuple[IntArray, IntArray]:
    """Pairs of run indices (upper, lower) in neighbouring rows that touch, diagonals included."""
    stride = width + 2
    start_keys = runs.rows * stride + runs.starts
    end_keys = runs.rows * stride + runs.ends
    # for a run in row r + 1, the runs of row r with end >= its start and start <= its end
    above = (runs.rows - 1) * stride
    first = np.searchsorted(end_keys, above + runs.starts, side="left")
    last = np.searchsorted(start_keys, above + runs.ends, side="right")
    counts = np.maximum(last - first, 0)
    lower = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    offsets = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    upper = np.repeat(first, counts) + offsets
    return upper, lower


def _roots(count: int, upper: IntArray, lower: IntArray) -> IntArray:
    parent = list(range(count))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(upper.tolist(), lower.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(count)], dtype=np.int64)


def components(mask: BoolArray) -> list[Component]:
    """The mask's 8-connected components, ordered by their first pixel in row-major order."""
    runs = row_runs(mask)
    if len(runs.rows) == 0:
        return []
    upper, lower = _touching(runs, mask.shape[1])
    roots = _roots(len(runs.rows), upper, lower)
    order = np.argsort(roots, kind="stable")  # runs of one component together, still row-major
    groups = np.split(order, np.flatnonzero(np.diff(roots[order])) + 1)
    found = []
    for group in groups:
        part = Runs(rows=runs.rows[group], starts=runs.starts[group], ends=runs.ends[group])
        x, y = int(part.starts.min()), int(part.rows[0])
        found.append(
            Component(
                runs=part,
                x=x,
                y=y,
                width=int(part.ends.max()) - x,
                height=int(part.rows[-1]) - y + 1,
            )
        )
    return found
