"""The demo's sample image: a small scene with shapes whose masks are easy to check by eye."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

SIZE = (320, 240)
DISC = (40, 60, 140, 160)  # bounding box of the red disc
PANEL = (190, 50, 290, 190)  # the blue panel


def scene_png() -> bytes:
    image = Image.new("RGB", SIZE, (235, 235, 228))
    draw = ImageDraw.Draw(image)
    draw.ellipse(DISC, fill=(210, 40, 40))
    draw.rectangle(PANEL, fill=(40, 70, 200))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
