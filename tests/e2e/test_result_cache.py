"""The result cache on the local stack: an identical request on the same image bytes (a data URI again,
an S3 object uploaded again, at the same time) is answered from the first job's masks, with the usual
verified webhook and no second WaveSpeed prediction; opting out and another tenant compute anew."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from PIL import Image, PngImagePlugin

from maskgate_local.demo.sample import PANEL, scene_png
from tests.e2e.conftest import TIMEOUT, Stack

pytestmark = pytest.mark.e2e
BOX = {"x_min": PANEL[0], "y_min": PANEL[1], "x_max": PANEL[2] + 1, "y_max": PANEL[3] + 1}


def unique_scene() -> bytes:
    """The sample scene, with a text chunk of its own: the same pixels, bytes no other test sends."""
    info = PngImagePlugin.PngInfo()
    info.add_text("test", uuid.uuid4().hex)
    buffer = io.BytesIO()
    Image.open(io.BytesIO(scene_png())).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def data_uri(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


def submissions(stack: Stack) -> int:
    return int(stack.emulator("GET", "/_emulator/stats").json()["submissions"])


def post(stack: Stack, image: bytes, *, key: str | None = None, **body: Any) -> dict[str, Any]:
    marker = uuid.uuid4().hex[:12]
    request = {
        "image": data_uri(image),
        "box_prompts": [BOX],
        "webhook_url": stack.hook_url,
        "metadata": {"test": marker},
        **body,
    }
    response = stack.api("POST", "/v1/segmentations", json=request, key=key)
    assert response.status_code == 202, response.text
    return {**response.json(), "marker": marker}


def finished(stack: Stack, job_id: str, *, key: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = dict(stack.api("GET", f"/v1/segmentations/{job_id}", key=key).json())
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"{job_id} did not finish in {timeout} s")


def mask_bytes(payload: dict[str, Any]) -> bytes:
    url = payload["data"]["masks"][0]["url"]
    return httpx.get(url, follow_redirects=True, timeout=TIMEOUT).raise_for_status().content


def test_the_same_data_uri_again_is_a_hit_with_its_webhook_and_no_second_prediction(stack: Stack) -> None:
    image = unique_scene()
    first = post(stack, image)
    computed = stack.wait_marker(first["marker"])
    before = submissions(stack)
    second = post(stack, image)
    reused = stack.wait_marker(second["marker"])
    assert submissions(stack) == before  # the emulator made no prediction for it
    assert reused.payload is not None and computed.payload is not None
    assert reused.payload["type"] == "segmentation.succeeded" and reused.payload["data"]["id"] == second["id"]
    assert mask_bytes(reused.payload) == mask_bytes(computed.payload)
    job = finished(stack, second["id"])
    assert job["cache"] == "hit" and job["prediction_id"] is None
    assert finished(stack, first["id"])["cache"] == "miss"


def test_cache_false_computes_again(stack: Stack) -> None:
    image = unique_scene()
    stack.wait_marker(post(stack, image)["marker"])
    before = submissions(stack)
    again = post(stack, image, cache=False)
    stack.wait_marker(again["marker"])
    assert submissions(stack) == before + 1
    assert finished(stack, again["id"])["cache"] is None


def test_an_s3_object_uploaded_again_is_a_new_job_and_a_hit(stack: Stack) -> None:
    image, marker = unique_scene(), uuid.uuid4().hex[:12]
    request = {"box_prompts": [BOX], "webhook_url": stack.hook_url, "metadata": {"test": marker}}
    key = f"uploads/cache-{marker}.png"
    stack.upload(key, image, request)
    first = stack.wait_marker(marker).payload
    assert first is not None
    before = submissions(stack)
    stack.upload(key, image, request)  # the same object written again
    second = stack.receiver.wait_until(
        lambda p: p["data"]["metadata"].get("test") == marker and p["data"]["id"] != first["data"]["id"],
        timeout=60,
        what=f"the re-upload's job ({marker})",
    )
    assert second.payload is not None and second.payload["type"] == "segmentation.succeeded"
    assert submissions(stack) == before
    assert finished(stack, second.payload["data"]["id"])["cache"] == "hit"


def test_identical_requests_at_the_same_time_pay_once(stack: Stack) -> None:
    image = unique_scene()
    before = submissions(stack)
    with ThreadPoolExecutor(max_workers=3) as pool:
        jobs = list(pool.map(lambda _: post(stack, image), range(3)))
    done = [finished(stack, job["id"], timeout=120) for job in jobs]
    assert [job["status"] for job in done] == ["succeeded"] * 3
    assert sorted(job["cache"] for job in done) == ["hit", "hit", "miss"]
    assert submissions(stack) == before + 1


def test_another_tenants_identical_request_is_computed_for_it(stack: Stack) -> None:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": stack.ready["aws_endpoint_url"],
        "AWS_DEFAULT_REGION": stack.ready["region"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "MASKGATE_TABLE": stack.ready["table"],
    }
    created = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "maskgate_local.cli.main",
            "keys",
            "create",
            "--tenant",
            f"cache-{uuid.uuid4().hex[:8]}",
        ],
        check=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    other = next(line.split()[2] for line in created.stdout.splitlines() if line.startswith("api key"))
    image = unique_scene()
    stack.wait_marker(post(stack, image)["marker"])
    before = submissions(stack)
    theirs = post(stack, image, key=other, webhook_url=None)
    job = finished(stack, theirs["id"], key=other)
    assert job["status"] == "succeeded" and job["cache"] == "miss"
    assert submissions(stack) == before + 1
