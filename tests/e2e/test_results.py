"""Results on the local stack: instances for box, point and text prompts, several instances, nothing
found, the COCO file and the CLI's files and ``show``, all checked with pycocotools."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pycocotools.mask as coco_mask
import pytest
from PIL import Image, ImageDraw
from pycocotools.coco import COCO

from maskgate_local.cli.main import main
from maskgate_local.demo.sample import DISC, PANEL, scene_png
from tests.e2e.conftest import TIMEOUT, Stack
from tests.e2e.test_vertical_slice import BOX, DISC_CENTRE, data_uri, submit

pytestmark = pytest.mark.e2e
RED_BOXES = [(20, 20, 60, 50), (100, 30, 150, 90)]  # x0, y0, x1, y1 inclusive, on a 200 x 160 image


def two_red_boxes() -> bytes:
    image = Image.new("RGB", (200, 160), (235, 235, 228))
    draw = ImageDraw.Draw(image)
    for box in RED_BOXES:
        draw.rectangle(box, fill=(210, 40, 40))
    draw.ellipse((30, 100, 80, 140), fill=(40, 70, 200))  # blue: not asked for
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _download(url: str) -> bytes:
    return httpx.get(url, follow_redirects=True, timeout=TIMEOUT).raise_for_status().content


def _finished(stack: Stack, **body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The job as GET shows it once done, and its webhook's payload."""
    job = submit(stack, **body)
    delivery = stack.receiver.wait_for(job["id"])
    assert delivery.payload is not None
    shown = stack.api("GET", f"/v1/segmentations/{job['id']}").json()
    return shown, delivery.payload


def _mask(shown: dict[str, Any]) -> np.ndarray:
    data = _download(shown["masks"][0]["url"])
    return np.asarray(Image.open(io.BytesIO(data)).convert("L")) >= 128


def _check_against_pycocotools(shown: dict[str, Any], tmp_path: Path) -> None:
    """Every RLE decodes to its part of the mask, pixel for pixel; area and bbox are pycocotools'; the
    polygons rasterize back (IoU >= 0.98); the COCO file loads and holds the same annotations."""
    mask = _mask(shown)
    union = np.zeros_like(mask)
    for instance in shown["instances"]:
        rle = {"size": instance["rle"]["size"], "counts": instance["rle"]["counts"].encode()}
        pixels = coco_mask.decode(rle).astype(bool)
        assert not (pixels & ~mask).any() and not (pixels & union).any()
        union |= pixels
        assert instance["area"] == int(coco_mask.area(rle))
        assert instance["bbox"] == [int(v) for v in coco_mask.toBbox(rle)]
        height, width = mask.shape
        drawn = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(instance["polygons"], height, width)))
        assert (pixels & drawn.astype(bool)).sum() / (pixels | drawn.astype(bool)).sum() >= 0.98
    assert union.sum() == sum(i["area"] for i in shown["instances"])
    path = tmp_path / "annotations.coco.json"
    path.write_bytes(_download(shown["results"]["coco_url"]))
    coco = COCO(str(path))
    annotations = coco.loadAnns(coco.getAnnIds())
    assert [a["bbox"] for a in annotations] == [i["bbox"] for i in shown["instances"]]
    for annotation, instance in zip(annotations, shown["instances"], strict=True):
        assert annotation["segmentation"]["counts"] == instance["rle"]["counts"]


@pytest.mark.parametrize(
    ("prompts", "boxes"),
    [
        ({"box_prompts": [BOX]}, [[PANEL[0], PANEL[1], PANEL[2] - PANEL[0] + 1, PANEL[3] - PANEL[1] + 1]]),
        (
            {"point_prompts": [DISC_CENTRE]},
            [[DISC[0], DISC[1], DISC[2] - DISC[0] + 1, DISC[3] - DISC[1] + 1]],
        ),
        ({"prompt": "the red disc"}, [[DISC[0], DISC[1], DISC[2] - DISC[0] + 1, DISC[3] - DISC[1] + 1]]),
    ],
    ids=["boxes", "points", "text"],
)
def test_each_prompt_kind_finds_its_object_as_an_instance(
    stack: Stack, tmp_path: Path, prompts: dict[str, Any], boxes: list[list[int]]
) -> None:
    shown, payload = _finished(stack, **prompts)
    assert shown["status"] == "succeeded" and shown["found"] is True
    assert [i["bbox"] for i in shown["instances"]] == boxes
    assert (payload["data"]["found"], payload["data"]["instance_count"]) == (True, len(boxes))
    _check_against_pycocotools(shown, tmp_path)


def test_text_prompt_finds_every_matching_object(stack: Stack, tmp_path: Path) -> None:
    shown, _ = _finished(stack, image=data_uri(two_red_boxes()), prompt="the red boxes")
    expected = [[x0, y0, x1 - x0 + 1, y1 - y0 + 1] for x0, y0, x1, y1 in RED_BOXES]
    assert [i["bbox"] for i in shown["instances"]] == expected
    assert shown["results"]["instance_count"] == 2
    _check_against_pycocotools(shown, tmp_path)
    coco = json.loads(_download(shown["results"]["coco_url"]))
    assert coco["categories"] == [{"id": 1, "name": "the red boxes", "supercategory": "object"}]


def test_several_boxes_give_several_instances(stack: Stack, tmp_path: Path) -> None:
    boxes = [{"x_min": 10, "y_min": 10, "x_max": 30, "y_max": 40}, BOX]
    shown, payload = _finished(stack, box_prompts=boxes)
    assert [i["bbox"] for i in shown["instances"]] == [  # in the order of their first pixel
        [10, 10, 20, 30],
        [PANEL[0], PANEL[1], PANEL[2] - PANEL[0] + 1, PANEL[3] - PANEL[1] + 1],
    ]
    assert payload["data"]["instance_count"] == 2
    _check_against_pycocotools(shown, tmp_path)


def test_prompt_matching_nothing_succeeds_with_nothing_found(stack: Stack) -> None:
    shown, payload = _finished(stack, prompt="a green car")
    assert shown["status"] == "succeeded" and shown["error"] is None
    assert (shown["found"], shown["instances"], shown["results"]["instance_count"]) == (False, [], 0)
    assert payload["type"] == "segmentation.succeeded"
    assert (payload["data"]["found"], payload["data"]["instance_count"]) == (False, 0)
    instances = json.loads(_download(payload["data"]["links"]["instances"]))
    assert (instances["found"], instances["instances"]) == (False, [])


def test_cut_out_jpeg_has_no_instances_and_says_why(stack: Stack) -> None:
    shown, payload = _finished(stack, box_prompts=[BOX], apply_mask=True, output_format="jpeg")
    assert shown["status"] == "succeeded" and shown["instances"] is None and shown["found"] is None
    assert shown["results"]["unavailable"]["type"] == "instances_unavailable"
    assert payload["data"]["instances_unavailable"]["type"] == "instances_unavailable"


@pytest.fixture
def cli(stack: Stack, capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    def run(*args: str) -> tuple[int, str, str]:
        where = ["--api-url", stack.ready["api_url"], "--api-key", stack.ready["api_key"]]
        code = main([args[0], *where, *args[1:]])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run


def test_cli_submit_out_writes_instances_and_coco_and_show_lists_them(cli: Any, tmp_path: Path) -> None:
    image = tmp_path / "boxes.png"
    image.write_bytes(two_red_boxes())
    code, out, err = cli("submit", str(image), "--prompt", "red", "--out", str(tmp_path / "out"))
    assert code == 0, err
    job_id = out.splitlines()[0]
    written = json.loads((tmp_path / "out" / f"{job_id}_instances.json").read_text())
    assert [i["bbox"] for i in written["instances"]] == [[20, 20, 41, 31], [100, 30, 51, 61]]
    code, out, err = cli("show", job_id)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{job_id} succeeded" and "instances: 2 found" in lines
    assert any("[20, 20, 41, 31]" in line and "1,271" in line for line in lines)
    coco = COCO(str(tmp_path / "out" / f"{job_id}_annotations.coco.json"))  # it prints as it loads
    assert len(coco.getAnnIds()) == 2


def test_cli_show_says_nothing_found(cli: Any, tmp_path: Path) -> None:
    image = tmp_path / "scene.png"
    image.write_bytes(scene_png())
    code, out, err = cli("submit", str(image), "--prompt", "green", "--wait")
    assert code == 0, err
    code, out, _ = cli("show", out.splitlines()[0])
    assert code == 0 and "instances: nothing found" in out.splitlines()
