"""The emulator's masks behave as SAM3's: every matching object, several boxes, or nothing."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from maskgate.results.instances import instances
from maskgate_local.emulator.masks import Box, Point, named_colours, paint_mask

BACKGROUND = (235, 235, 228)
RED_BOXES = [(20, 20, 60, 50), (100, 30, 150, 90)]  # x0, y0, x1, y1 inclusive
BLUE_BOX = (30, 100, 80, 140)


def _scene() -> Image.Image:
    image = Image.new("RGB", (200, 160), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for box in RED_BOXES:
        draw.rectangle(box, fill=(210, 40, 40))
    draw.rectangle(BLUE_BOX, fill=(40, 70, 200))
    return image


def _boxes(mask: Image.Image) -> list[list[int]]:
    return sorted(i["bbox"] for i in instances([np.asarray(mask) >= 128]))


def _bbox(x0: int, y0: int, x1: int, y1: int) -> list[int]:
    return [x0, y0, x1 - x0 + 1, y1 - y0 + 1]


def test_text_prompt_marks_every_object_of_its_colour() -> None:
    assert _boxes(paint_mask(_scene(), prompt="the red boxes")) == sorted(_bbox(*b) for b in RED_BOXES)


def test_text_prompt_without_a_colour_marks_every_object() -> None:
    expected = sorted(_bbox(*b) for b in [*RED_BOXES, BLUE_BOX])
    assert _boxes(paint_mask(_scene(), prompt="the objects")) == expected


def test_text_prompt_matching_nothing_gives_an_empty_mask() -> None:
    mask = paint_mask(_scene(), prompt="a green car")
    assert mask.getbbox() is None


def test_several_boxes_give_several_instances() -> None:
    boxes = [Box(0, 0, 10, 10), Box(50, 50, 70, 60), Box(100, 0, 120, 30)]
    assert _boxes(paint_mask(_scene(), boxes=boxes)) == [[0, 0, 10, 10], [50, 50, 20, 10], [100, 0, 20, 30]]


def test_positive_points_give_one_instance_each() -> None:
    points = [Point(30, 30), Point(120, 50)]
    assert _boxes(paint_mask(_scene(), points=points)) == sorted(_bbox(*b) for b in RED_BOXES)


def test_named_colours_reads_words_and_synonyms() -> None:
    assert named_colours("Gray cats, RED-ish dogs; reddish") == ["red", "grey"]
