"""Instances from mask images: decode, split into 8-connected components above ``MIN_AREA`` pixels,
and describe each one (box, area, centroid, COCO RLE, polygons)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from maskgate.results import polygons, rle
from maskgate.results.components import BoolArray, Component, components

MIN_AREA = 16  # pixels: smaller specks are noise, not objects
THRESHOLD = 128  # a pixel is set when its grey level (or, for a cut-out image, its alpha) reaches this


class NoAlpha(ValueError):
    """A cut-out image (apply_mask) without an alpha channel: where the object is cannot be read."""


def decode(data: bytes, *, cut_out: bool) -> BoolArray:
    """The binary mask of a mask image, or of a cut-out image's alpha channel; NoAlpha if it has none."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if cut_out:
            if "A" not in image.getbands() and "transparency" not in image.info:
                raise NoAlpha(f"the {image.format} output has no alpha channel")
            band = image.convert("RGBA").getchannel("A")
        else:
            band = image.convert("L")
    return np.asarray(band) >= THRESHOLD


def describe(component: Component, *, index: int, mask_index: int, height: int, width: int) -> dict[str, Any]:
    """One instance as the job shows it."""
    runs = component.runs
    lengths = runs.ends - runs.starts
    area = int(lengths.sum())
    # the mean of the pixels' centres: a pixel (col, row) is centred on (col + 0.5, row + 0.5)
    cx = float(((runs.starts + runs.ends) * lengths).sum()) / (2 * area)
    cy = float((runs.rows * lengths).sum()) / area + 0.5
    return {
        "index": index,
        "mask_index": mask_index,
        "bbox": [component.x, component.y, component.width, component.height],
        "area": area,
        "centroid": [round(cx, 2), round(cy, 2)],
        "rle": rle.encode(component, height=height, width=width),
        "polygons": polygons.polygons(component),
    }


def instances(masks: list[BoolArray], *, min_area: int = MIN_AREA) -> list[dict[str, Any]]:
    """Every component of at least ``min_area`` pixels of every mask, numbered from 0 across masks."""
    found: list[dict[str, Any]] = []
    for mask_index, mask in enumerate(masks):
        height, width = mask.shape
        for component in components(mask):
            if component.area >= min_area:
                found.append(
                    describe(component, index=len(found), mask_index=mask_index, height=height, width=width)
                )
    return found
