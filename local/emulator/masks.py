"""Masks the WaveSpeed emulator draws from the image itself, standing in for SAM3.

Boxes are filled rectangles over the pixels ``floor(x_min) <= x < ceil(x_max)`` (same for y).
A point grows the 4-connected region whose colour lies within ``tolerance`` (per channel) of the
pixel under it. A text prompt marks, as SAM3 does, every object that matches it: the foreground
pixels (those that differ strongly from the border's median colour, the background estimate) whose
nearest colour in ``COLOURS`` is one the prompt names ("the red boxes": every red object); a prompt
naming no colour marks all the foreground, one naming the background its complement, and one whose
colours are nowhere in the image nothing at all (an empty mask). Prompt kinds are united, then
regions grown from negative points are taken away. Disjoint boxes and objects stay apart in the one
mask, so each is an instance of its own.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageStat

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
REGION_TOLERANCE = 32
FOREGROUND_THRESHOLD = 48
COLOURS = {
    "red": (220, 30, 30),
    "orange": (240, 140, 20),
    "yellow": (240, 220, 30),
    "green": (30, 170, 50),
    "blue": (40, 70, 210),
    "purple": (130, 40, 160),
    "white": (250, 250, 250),
    "black": (10, 10, 10),
    "grey": (128, 128, 128),
}
SYNONYMS = {"gray": "grey", "violet": "purple"}


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: int = 1


@dataclass(frozen=True)
class Box:
    x_min: float
    y_min: float
    x_max: float
    y_max: float


def decode_image(data: bytes) -> Image.Image:
    """Decode any image Pillow reads into RGB; raises ``OSError``/``ValueError`` when it cannot."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.convert("RGB")


def segment(
    image: Image.Image,
    *,
    prompt: str | None,
    points: Sequence[Point],
    boxes: Sequence[Box],
    apply_mask: bool,
    output_format: str,
) -> bytes:
    """The encoded output for one prediction: the mask of the prompts, rendered."""
    mask = paint_mask(image, prompt=prompt, points=points, boxes=boxes)
    return render(image, mask, apply_mask=apply_mask, output_format=output_format)


def paint_mask(
    image: Image.Image,
    *,
    prompt: str | None = None,
    points: Sequence[Point] = (),
    boxes: Sequence[Box] = (),
    tolerance: int = REGION_TOLERANCE,
) -> Image.Image:
    """The binary mask ("L", 0 or 255, the image's size) for the given prompts."""
    mask = Image.new("L", image.size, 0)
    if boxes:
        mask = ImageChops.lighter(mask, box_mask(image.size, boxes))
    if prompt and prompt.strip():
        mask = ImageChops.lighter(mask, text_mask(image, prompt))
    for point in points:
        if point.label == 1:
            mask = ImageChops.lighter(mask, grow_region(image, point, tolerance))
    for point in points:
        if point.label == 0:
            mask = ImageChops.subtract(mask, grow_region(image, point, tolerance))
    return mask


def box_mask(size: tuple[int, int], boxes: Sequence[Box]) -> Image.Image:
    """Filled rectangles, clipped to the image."""
    width, height = size
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for box in boxes:
        x0, y0 = max(0, math.floor(box.x_min)), max(0, math.floor(box.y_min))
        x1, y1 = min(width, math.ceil(box.x_max)), min(height, math.ceil(box.y_max))
        if x1 > x0 and y1 > y0:
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=255)
    return mask


def grow_region(image: Image.Image, point: Point, tolerance: int = REGION_TOLERANCE) -> Image.Image:
    """The connected region of colours close to the one under ``point`` (empty if it lies outside)."""
    x, y = math.floor(point.x), math.floor(point.y)
    if not (0 <= x < image.width and 0 <= y < image.height):
        return Image.new("L", image.size, 0)
    seed = image.getpixel((x, y))
    similar = _max_channel(ImageChops.difference(image, Image.new("RGB", image.size, seed))).point(
        lambda v: 255 if v <= tolerance else 0
    )
    filled = _scanline_fill(similar.tobytes(), image.width, x, y)
    return Image.frombytes("L", image.size, bytes(filled))


def text_mask(image: Image.Image, prompt: str, threshold: int = FOREGROUND_THRESHOLD) -> Image.Image:
    """Pixels far from the background colour estimate; the complement when the prompt asks for it."""
    background = border_colour(image)
    distance = _max_channel(ImageChops.difference(image, Image.new("RGB", image.size, background)))
    foreground = distance.point(lambda v: 255 if v > threshold else 0)
    if "background" in prompt.lower():
        return ImageChops.invert(foreground)
    named = named_colours(prompt)
    if not named:
        return foreground
    pixels = np.asarray(image, dtype=np.int32)
    best = np.full(pixels.shape[:2], np.iinfo(np.int32).max, dtype=np.int32)
    wanted = np.zeros(pixels.shape[:2], dtype=np.bool_)
    for name, colour in COLOURS.items():  # one colour at a time: memory stays a few planes
        distance_sq = ((pixels - np.array(colour, dtype=np.int32)) ** 2).sum(axis=2, dtype=np.int32)
        closer = distance_sq < best
        best = np.where(closer, distance_sq, best)
        wanted = np.where(closer, name in named, wanted)
    matching = Image.fromarray(np.where(wanted, 255, 0).astype(np.uint8), "L")
    return ImageChops.multiply(foreground, matching)


def named_colours(prompt: str) -> list[str]:
    """The colours of ``COLOURS`` a prompt names, by word ("the red boxes" → red)."""
    words = "".join(c if c.isalpha() else " " for c in prompt.lower()).split()
    return [name for name in COLOURS if name in {SYNONYMS.get(w, w) for w in words}]


def border_colour(image: Image.Image) -> tuple[int, int, int]:
    """The median colour of the outermost rows and columns."""
    width, height = image.size
    strips = [
        image.crop((0, 0, width, 1)),
        image.crop((0, height - 1, width, height)),
        image.crop((0, 0, 1, height)).transpose(Image.Transpose.ROTATE_90),
        image.crop((width - 1, 0, width, height)).transpose(Image.Transpose.ROTATE_90),
    ]
    border = Image.new("RGB", (sum(s.width for s in strips), 1))
    offset = 0
    for strip in strips:
        border.paste(strip, (offset, 0))
        offset += strip.width
    red, green, blue = (int(v) for v in ImageStat.Stat(border).median)
    return red, green, blue


def render(image: Image.Image, mask: Image.Image, *, apply_mask: bool, output_format: str) -> bytes:
    """Encode the mask (white on black) or, with ``apply_mask``, the image cut out by the mask."""
    if not apply_mask:
        out = mask
    elif output_format == "jpeg":
        out = Image.composite(image, Image.new("RGB", image.size, (0, 0, 0)), mask)
    else:
        out = Image.composite(image, Image.new("RGB", image.size, (0, 0, 0)), mask).convert("RGBA")
        out.putalpha(mask)
    buffer = io.BytesIO()
    if output_format == "webp":
        out.save(buffer, format="WEBP", lossless=True)
    elif output_format == "jpeg":
        out.save(buffer, format="JPEG", quality=95)
    else:
        out.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def corrupt(data: bytes) -> bytes:
    """A broken output file: wrong magic bytes and cut short."""
    return b"\x00" * 8 + data[8 : max(9, len(data) // 2)]


def _scanline_fill(similar: bytes, width: int, x: int, y: int) -> bytearray:
    """4-connected fill of the 255-run containing (x, y), a row run at a time (the scans run in C)."""
    filled = bytearray(len(similar))
    stack = [y * width + x]
    while stack:
        at = stack.pop()
        if filled[at] or similar[at] != 255:
            continue
        row = at - at % width
        start = max(row, similar.rfind(0, row, at) + 1)
        end = similar.find(0, at, row + width)
        end = row + width if end == -1 else end
        filled[start:end] = b"\xff" * (end - start)
        for neighbour in (row - width, row + width):
            if 0 <= neighbour < len(similar):
                stack.extend(_run_starts(similar, neighbour + start - row, neighbour + end - row))
    return filled


def _run_starts(similar: bytes, start: int, end: int) -> list[int]:
    """The first pixel of each 255-run of ``similar`` that overlaps [start, end)."""
    starts = []
    while start < end:
        found = similar.find(255, start, end)
        if found == -1:
            break
        starts.append(found)
        after = similar.find(0, found, end)
        start = end if after == -1 else after
    return starts


def _max_channel(rgb: Image.Image) -> Image.Image:
    red, green, blue = rgb.split()
    return ImageChops.lighter(ImageChops.lighter(red, green), blue)
