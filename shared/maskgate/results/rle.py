"""COCO run-length encoding, compressed string form, as pycocotools writes it.

COCO counts alternate runs of 0s and 1s over the mask read column by column (Fortran order),
starting with 0s (a count of 0 when the first pixel is set). The compressed string writes each count,
from the third on as the difference to the count two before, in chunks of 5 bits, low bits first: a
chunk is ``48 + bits`` with ``0x20`` set when more chunks follow; the last chunk's ``0x10`` is the sign.
"""

from __future__ import annotations

import numpy as np

from maskgate.results.components import Component, IntArray


def column_runs(component: Component, image_height: int) -> tuple[IntArray, IntArray]:
    """Starts and ends (exclusive) of the component's runs in the whole image read column by column."""
    columns = component.crop().T  # one row per image column, in the component's box
    padded = np.zeros((columns.shape[0], columns.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = columns
    step = np.diff(padded, axis=1)
    col, top = np.nonzero(step == 1)
    _, bottom = np.nonzero(step == -1)
    base = (col.astype(np.int64) + component.x) * image_height + component.y
    starts, ends = base + top, base + bottom
    # a run reaching the image's last row continues at the top of the next column
    joined = np.flatnonzero(starts[1:] == ends[:-1])
    return np.delete(starts, joined + 1), np.delete(ends, joined)


def counts(starts: IntArray, ends: IntArray, total: int) -> list[int]:
    """The COCO counts of set runs [start, end) in a mask of ``total`` pixels."""
    if len(starts) == 0:
        return [total]
    gaps = starts - np.concatenate(([0], ends[:-1]))
    lengths = ends - starts
    out = np.empty(2 * len(starts), dtype=np.int64)
    out[0::2], out[1::2] = gaps, lengths
    tail = total - int(ends[-1])
    values = [int(v) for v in out]
    return [*values, tail] if tail else values


def compress(values: list[int]) -> str:
    """The compressed string of a list of COCO counts."""
    chars: list[str] = []
    for i, count in enumerate(values):
        x = count - values[i - 2] if i > 2 else count
        more = True
        while more:
            chunk = x & 0x1F
            x >>= 5
            more = x != -1 if chunk & 0x10 else x != 0
            chars.append(chr(48 + (chunk | 0x20 if more else chunk)))
    return "".join(chars)


def encode(component: Component, *, height: int, width: int) -> dict[str, object]:
    """The component's COCO RLE: ``{"size": [h, w], "counts": "<compressed string>"}``."""
    starts, ends = column_runs(component, height)
    return {"size": [height, width], "counts": compress(counts(starts, ends, height * width))}
