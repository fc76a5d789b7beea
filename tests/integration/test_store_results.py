"""Store's results on moto: instances in the job and in results/<job_id>/, the COCO file, nothing found,
cut-out outputs, and the outputs a request asks for."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pycocotools.mask as coco_mask
from PIL import Image, ImageDraw
from pycocotools.coco import COCO
from standardwebhooks import Webhook

from maskgate import clients
from maskgate.contracts.job import JobStatus
from maskgate.contracts.prompts import Prompts
from tests.integration.conftest import Aws
from tests.integration.seeds import WEBHOOK, queued_job, submit_event
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import FakeWaveSpeed, Receiver

SIZE = (64, 48)
BOXES = [(4, 6, 20, 30), (30, 10, 60, 20)]  # x0, y0, x1, y1 (exclusive)


def _mask(
    boxes: list[tuple[int, int, int, int]], *, mode: str = "L", fmt: str = "PNG", size: tuple[int, int] = SIZE
) -> bytes:
    image = Image.new(mode, size, 0)
    draw = ImageDraw.Draw(image)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=255 if mode == "L" else (255, 255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _run(aws: Aws, wavespeed: FakeWaveSpeed, output: bytes, **request: Any) -> Any:
    wavespeed.output = output
    prompts = Prompts(prompt="the box", webhook_url=WEBHOOK, **request)
    job = queued_job(aws, request=prompts)
    pid = load_handler("submit").handler(submit_event(job), LambdaContext())["prediction_id"]
    load_handler("store").handler({**event("store"), "job_id": job.id, "prediction_id": pid}, LambdaContext())
    return clients.job_store().get(job.id)


def _object(aws: Aws, key: str) -> Any:
    return json.loads(aws.client("s3").get_object(Bucket=aws.bucket, Key=key)["Body"].read())


def _expected(box: tuple[int, int, int, int]) -> np.ndarray:
    pixels = np.zeros((SIZE[1], SIZE[0]), dtype=bool)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = True
    return pixels


def test_store_finds_each_object_and_writes_instances_and_coco(
    aws: Aws, wavespeed: FakeWaveSpeed, receiver: Receiver, tmp_path: Any
) -> None:
    job = _run(aws, wavespeed, _mask(BOXES))
    assert job.status is JobStatus.SUCCEEDED
    results = job.results
    assert results is not None and results.found is True and results.instance_count == 2
    assert results.instances_key == f"results/{job.id}/instances.json"
    assert results.coco_key == f"results/{job.id}/annotations.coco.json"
    raw = aws.client("s3").get_object(Bucket=aws.bucket, Key=results.instances_key)["Body"].read()
    assert results.instances_bytes == len(raw)
    stored = json.loads(raw)
    assert stored["found"] is True and (stored["width"], stored["height"]) == SIZE
    for instance, box in zip(stored["instances"], BOXES, strict=True):
        rle = {"size": instance["rle"]["size"], "counts": instance["rle"]["counts"].encode()}
        assert (coco_mask.decode(rle).astype(bool) == _expected(box)).all()
        x0, y0, x1, y1 = box
        assert instance["bbox"] == [x0, y0, x1 - x0, y1 - y0] and instance["area"] == (x1 - x0) * (y1 - y0)
    # the COCO file loads in pycocotools and holds the same pixels
    path = tmp_path / "annotations.coco.json"
    path.write_text(json.dumps(_object(aws, results.coco_key)))
    coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["the box"]
    annotations = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert [a["iscrowd"] for a in annotations] == [0, 0]
    for annotation, box in zip(annotations, BOXES, strict=True):
        assert (coco.annToMask(annotation).astype(bool) == _expected(box)).all()
    # the webhook stays thin: counts and signed links
    [request] = receiver.requests
    data = Webhook(aws.secret).verify(request.content, dict(request.headers))["data"]
    assert data["found"] is True and data["instance_count"] == 2 and "instances" not in data
    assert "/results/instances.json?token=" in data["links"]["instances"]
    assert "/results/annotations.coco.json?token=" in data["links"]["coco"]


def test_store_empty_mask_succeeds_with_nothing_found(
    aws: Aws, wavespeed: FakeWaveSpeed, receiver: Receiver
) -> None:
    job = _run(aws, wavespeed, _mask([]))
    assert job.status is JobStatus.SUCCEEDED and job.error is None
    assert job.results is not None
    assert (job.results.found, job.results.instance_count) == (False, 0)
    assert _object(aws, f"results/{job.id}/instances.json")["instances"] == []
    assert _object(aws, f"results/{job.id}/annotations.coco.json")["annotations"] == []
    [request] = receiver.requests
    payload = Webhook(aws.secret).verify(request.content, dict(request.headers))
    assert payload["type"] == "segmentation.succeeded"
    assert (payload["data"]["found"], payload["data"]["instance_count"]) == (False, 0)


def test_store_cut_out_png_finds_instances_in_its_alpha(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    job = _run(aws, wavespeed, _mask(BOXES[:1], mode="RGBA"), apply_mask=True)
    assert job.results is not None and job.results.instance_count == 1
    stored = _object(aws, job.results.instances_key or "")
    assert [i["bbox"] for i in stored["instances"]] == [[4, 6, 16, 24]]


def test_store_cut_out_jpeg_says_instances_are_unavailable(
    aws: Aws, wavespeed: FakeWaveSpeed, receiver: Receiver
) -> None:
    wavespeed.output_format = "jpeg"
    job = _run(aws, wavespeed, _mask(BOXES, mode="RGB", fmt="JPEG"), apply_mask=True, output_format="jpeg")
    assert job.status is JobStatus.SUCCEEDED and len(job.masks) == 1
    results = job.results
    assert results is not None and results.unavailable is not None
    assert results.unavailable.type == "instances_unavailable"
    assert (results.found, results.instance_count, results.instances_key, results.coco_key) == (None,) * 4
    [request] = receiver.requests
    data = Webhook(aws.secret).verify(request.content, dict(request.headers))["data"]
    assert data["instances_unavailable"]["type"] == "instances_unavailable"
    assert "instances" not in data["links"]


def test_store_masks_only_finds_no_instances(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    job = _run(aws, wavespeed, _mask(BOXES), outputs=["masks"])
    assert len(job.masks) == 1 and job.results is not None
    assert (job.results.found, job.results.instance_count, job.results.instances_key) == (None, None, None)
    listed = aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=f"results/{job.id}/")
    assert [o["Key"] for o in listed["Contents"]] == [f"results/{job.id}/mask_0.png"]


def test_store_coco_only_keeps_no_mask_images(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    job = _run(aws, wavespeed, _mask(BOXES), outputs=["coco"])
    assert job.masks == [] and job.results is not None
    assert (job.results.found, job.results.instance_count, job.results.instances_key) == (True, 2, None)
    listed = aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=f"results/{job.id}/")
    assert [o["Key"] for o in listed["Contents"]] == [f"results/{job.id}/annotations.coco.json"]


def _get(path: str, *, key: str | None = None, query: str = "") -> dict[str, Any]:
    sample = event("api_get_segmentation")
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = path
    sample["rawQueryString"] = query
    if key is None:
        del sample["headers"]["authorization"]
    else:
        sample["headers"]["authorization"] = f"Bearer {key}"
    return dict(load_handler("api").handler(sample, LambdaContext()))


def test_api_job_shows_found_instances_and_result_links(
    aws: Aws, wavespeed: FakeWaveSpeed, receiver: Receiver
) -> None:
    job = _run(aws, wavespeed, _mask(BOXES))
    shown = json.loads(_get(f"/v1/segmentations/{job.id}", key=aws.api_key)["body"])
    assert shown["found"] is True and [i["bbox"] for i in shown["instances"]] == [
        [4, 6, 16, 24],
        [30, 10, 30, 10],
    ]
    assert shown["results"]["instance_count"] == 2 and shown["results"]["unavailable"] is None
    assert f"results/{job.id}/instances.json" in shown["results"]["instances_url"]
    assert f"results/{job.id}/annotations.coco.json" in shown["results"]["coco_url"]
    # the webhook's signed links redirect to the files, without the API key
    [request] = receiver.requests
    links = Webhook(aws.secret).verify(request.content, dict(request.headers))["data"]["links"]
    for link, name in (("instances", "instances.json"), ("coco", "annotations.coco.json")):
        path, _, query = links[link].partition("?")
        response = _get(path[path.index("/v1/") :], query=query)
        assert response["statusCode"] == 302
        location = {k.lower(): v for k, v in response["headers"].items()}["location"]
        assert f"results/{job.id}/{name}" in location
    keyed = _get(f"/v1/segmentations/{job.id}/results/instances.json", key=aws.api_key)
    assert keyed["statusCode"] == 302


def test_api_result_link_with_a_bad_token_is_404(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    job = _run(aws, wavespeed, _mask(BOXES))
    response = _get(f"/v1/segmentations/{job.id}/results/instances.json", query="token=1.x")
    assert response["statusCode"] == 404


def test_api_result_file_not_asked_for_is_404(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    job = _run(aws, wavespeed, _mask(BOXES), outputs=["masks"])
    response = _get(f"/v1/segmentations/{job.id}/results/annotations.coco.json", key=aws.api_key)
    assert response["statusCode"] == 404


def test_store_keeps_instances_out_of_the_job_item(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    job = _run(aws, wavespeed, _mask(BOXES))
    item = aws.client("dynamodb").get_item(TableName=aws.table, Key={"pk": {"S": f"JOB#{job.id}"}})["Item"]
    assert json.loads(item["results"]["S"])["instance_count"] == 2 and "counts" not in json.dumps(item)


def test_api_job_shows_many_instances_by_link_only(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    # given 800 squares: instances.json is far above the 32 KiB the GET shows inline
    boxes = [(x, y, x + 4, y + 4) for x in range(0, 200, 5) for y in range(0, 100, 5)]
    job = _run(aws, wavespeed, _mask(boxes, size=(200, 100)), outputs=["instances"])
    assert job.results is not None and (job.results.instances_bytes or 0) > 32 * 1024
    shown = json.loads(_get(f"/v1/segmentations/{job.id}", key=aws.api_key)["body"])
    assert shown["found"] is True and shown["instances"] is None
    assert shown["results"]["instance_count"] == len(boxes) and shown["results"]["instances_url"]
    assert len(_object(aws, job.results.instances_key or "")["instances"]) == len(boxes)


def test_api_job_list_shows_counts_not_instances(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    job = _run(aws, wavespeed, _mask(BOXES))
    page = json.loads(_get("/v1/segmentations", key=aws.api_key)["body"])
    [listed] = [j for j in page["data"] if j["id"] == job.id]
    assert (listed["found"], listed["instances"], listed["results"]["instance_count"]) == (True, None, 2)
