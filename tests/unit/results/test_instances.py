"""Instances checked against pycocotools, the reference implementation of COCO's masks and polygons."""

from __future__ import annotations

import io

import numpy as np
import pycocotools.mask as coco_mask
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from maskgate.results.components import components
from maskgate.results.instances import MIN_AREA, NoAlpha, decode, instances

masks = st.integers(1, 48).flatmap(
    lambda h: st.integers(1, 48).flatmap(lambda w: arrays(np.bool_, (h, w), elements=st.booleans()))
)


def _pixels(instance: dict) -> np.ndarray:
    rle = {"size": instance["rle"]["size"], "counts": instance["rle"]["counts"].encode()}
    return coco_mask.decode(rle).astype(bool)


def _rasterized(instance: dict, height: int, width: int) -> np.ndarray:
    rles = coco_mask.frPyObjects(instance["polygons"], height, width)
    return coco_mask.decode(coco_mask.merge(rles)).astype(bool)


def _components_8(mask: np.ndarray) -> list[np.ndarray]:
    """An independent flood fill: the 8-connected components, each as a full-size boolean mask."""
    seen = np.zeros_like(mask)
    found = []
    for y, x in zip(*np.nonzero(mask), strict=True):
        if seen[y, x]:
            continue
        part = np.zeros_like(mask)
        stack = [(y, x)]
        seen[y, x] = True
        while stack:
            cy, cx = stack.pop()
            part[cy, cx] = True
            for ny in range(max(cy - 1, 0), min(cy + 2, mask.shape[0])):
                for nx in range(max(cx - 1, 0), min(cx + 2, mask.shape[1])):
                    if mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        found.append(part)
    return found


@settings(max_examples=150, deadline=None)
@given(masks)
def test_instances_are_the_8_connected_components_above_the_minimum_area(mask: np.ndarray) -> None:
    expected = [part for part in _components_8(mask) if part.sum() >= MIN_AREA]
    found = instances([mask])
    assert [i["index"] for i in found] == list(range(len(expected)))
    assert sorted(_pixels(i).tobytes() for i in found) == sorted(p.tobytes() for p in expected)


@settings(max_examples=150, deadline=None)
@given(masks)
def test_instance_rle_area_and_bbox_equal_pycocotools(mask: np.ndarray) -> None:
    for instance in instances([mask], min_area=1):
        pixels = _pixels(instance)
        reference = coco_mask.encode(np.asfortranarray(pixels.astype(np.uint8)))
        assert instance["rle"]["counts"] == reference["counts"].decode()
        assert instance["rle"]["size"] == list(mask.shape)
        assert instance["area"] == int(coco_mask.area(reference))
        assert instance["bbox"] == [int(v) for v in coco_mask.toBbox(reference)]
        ys, xs = np.nonzero(pixels)
        assert instance["centroid"] == pytest.approx([xs.mean() + 0.5, ys.mean() + 0.5], abs=0.0051)


@settings(max_examples=150, deadline=None)
@given(masks)
def test_instance_polygons_rasterize_back_to_the_instance(mask: np.ndarray) -> None:
    height, width = mask.shape
    for instance in instances([mask]):
        pixels = _pixels(instance)
        drawn = _rasterized(instance, height, width)
        iou = (pixels & drawn).sum() / (pixels | drawn).sum()
        assert iou >= 0.98
        assert all(len(ring) >= 6 and len(ring) % 2 == 0 for ring in instance["polygons"])


def test_instance_polygon_keeps_holes_open() -> None:
    # given a square with two holes
    mask = np.zeros((40, 40), dtype=bool)
    mask[5:35, 5:35] = True
    mask[10:15, 10:25] = False
    mask[20:30, 8:12] = False
    # when
    (instance,) = instances([mask])
    # then the one ring, rasterized by pycocotools, leaves both holes out
    assert len(instance["polygons"]) == 1
    assert (_rasterized(instance, 40, 40) == mask).all()


def test_instances_of_smooth_shapes_at_large_scale() -> None:
    yy, xx = np.ogrid[:600, :800]
    mask = ((yy - 300) ** 2 + (xx - 250) ** 2 < 200**2) | ((yy - 200) ** 2 + (xx - 650) ** 2 < 100**2)
    found = instances([mask])
    assert [i["area"] for i in found] == [int(c.sum()) for c in _split_by_x(mask, 450)]
    for instance in found:
        pixels, drawn = _pixels(instance), _rasterized(instance, 600, 800)
        assert (pixels & drawn).sum() / (pixels | drawn).sum() >= 0.98
        assert len(instance["polygons"][0]) < 2 * 4 * 400  # simplified well below its traced corners


def _split_by_x(mask: np.ndarray, x: int) -> list[np.ndarray]:
    left, right = mask.copy(), mask.copy()
    left[:, x:] = False
    right[:, :x] = False
    return [left, right]


def test_components_join_diagonal_neighbours() -> None:
    mask = np.eye(5, dtype=bool)
    (only,) = components(mask)
    assert (only.area, only.x, only.y, only.width, only.height) == (5, 0, 0, 5, 5)


def test_instances_number_across_masks() -> None:
    first = np.zeros((10, 10), dtype=bool)
    first[0:5, 0:5] = True
    second = np.zeros((10, 10), dtype=bool)
    second[5:10, 5:10] = True
    found = instances([first, second])
    assert [(i["index"], i["mask_index"], i["bbox"]) for i in found] == [
        (0, 0, [0, 0, 5, 5]),
        (1, 1, [5, 5, 5, 5]),
    ]


def test_empty_mask_has_no_instances() -> None:
    assert instances([np.zeros((30, 20), dtype=bool)]) == []


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def test_decode_reads_a_grey_mask_at_half_level() -> None:
    grey = Image.new("L", (4, 2), 0)
    grey.putpixel((1, 0), 128)
    grey.putpixel((2, 1), 127)
    mask = decode(_encoded(grey, "PNG"), cut_out=False)
    assert mask.tolist() == [[False, True, False, False], [False, False, False, False]]


def test_decode_reads_a_cut_out_image_by_its_alpha() -> None:
    cut = Image.new("RGBA", (3, 1), (200, 10, 10, 0))
    cut.putpixel((2, 0), (0, 0, 0, 255))  # a black pixel of the object: only alpha tells
    assert decode(_encoded(cut, "PNG"), cut_out=True).tolist() == [[False, False, True]]


def test_decode_refuses_a_cut_out_image_without_alpha() -> None:
    with pytest.raises(NoAlpha):
        decode(_encoded(Image.new("RGB", (3, 3)), "JPEG"), cut_out=True)
