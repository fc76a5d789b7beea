"""The compressed RLE string against pycocotools' own encoder."""

from __future__ import annotations

import numpy as np
import pycocotools.mask as coco_mask
from hypothesis import given, settings
from hypothesis import strategies as st

from maskgate.results.rle import compress


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 5000), min_size=1, max_size=40), st.booleans(), st.integers(1, 97))
def test_compress_equals_pycocotools_for_any_runs(runs: list[int], starts_set: bool, height: int) -> None:
    values = np.repeat(np.arange(len(runs)) % 2 == (0 if starts_set else 1), runs)
    total = len(values)
    width = -(-total // height)
    padded = np.zeros(height * width, dtype=np.uint8)
    padded[:total] = values
    mask = padded.reshape(width, height).T  # column-major, as COCO reads it
    counts = [0, *runs] if starts_set else list(runs)
    if height * width > total:
        if len(counts) % 2 == 1:  # the last run is 0s: it grows
            counts[-1] += height * width - total
        else:
            counts.append(height * width - total)
    reference = coco_mask.encode(np.asfortranarray(mask))
    assert compress(counts) == reference["counts"].decode()
