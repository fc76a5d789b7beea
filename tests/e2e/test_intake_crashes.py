"""Crashes right after a job is written and before its workflow starts, on the local stack as users
run it: the re-run (S3's asynchronous retry, or the client's retry with its Idempotency-Key) finishes
exactly one job, which succeeds with its webhook."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import TIMEOUT, Crashes, Stack, injected
from tests.e2e.test_vertical_slice import BOX, data_uri, marker
from tests.support.images import unique_scene

pytestmark = pytest.mark.e2e


def jobs_tagged(stack: Stack, tag: str) -> list[str]:
    listed = stack.api("GET", "/v1/segmentations", params={"limit": 100}).json()["data"]
    return [job["id"] for job in listed if ((job["request"] or {}).get("metadata") or {}).get("test") == tag]


def test_an_api_request_killed_after_its_job_is_adopted_by_the_retry_with_its_key(
    stack: Stack, crashes: Crashes
) -> None:
    # every run that writes the job is killed right after: only adopting it can get past the point
    crashes({"api.after_job": 1.0})
    tag = marker()
    body = {
        "image": data_uri(),
        "box_prompts": [BOX],
        "webhook_url": stack.hook_url,
        "metadata": {"test": tag},
    }
    headers = {"Idempotency-Key": f"crash-{tag}"}

    crashed = stack.api("POST", "/v1/segmentations", json=body, headers=headers)
    retried = stack.api("POST", "/v1/segmentations", json=body, headers=headers)

    assert crashed.status_code == 500 and injected(stack, "api.after_job") == 1
    assert retried.status_code == 202, retried.text
    delivery = stack.wait_marker(tag)
    assert delivery.payload is not None and delivery.payload["data"]["status"] == "succeeded"
    assert jobs_tagged(stack, tag) == [retried.json()["id"]] == [delivery.payload["data"]["id"]]


def test_a_raw_upload_killed_after_its_job_is_finished_by_the_async_retry(
    stack: Stack, crashes: Crashes
) -> None:
    crashes({"on_upload.after_job": 1.0})
    tag = marker()
    stack.upload(
        f"uploads/{tag}.png",
        unique_scene(),
        {"box_prompts": [BOX], "webhook_url": stack.hook_url, "metadata": {"test": tag}},
    )

    delivery = stack.wait_marker(tag)

    assert delivery.payload is not None and delivery.payload["data"]["status"] == "succeeded"
    assert injected(stack, "on_upload.after_job") == 1  # the retry found the job and started it


def test_a_registered_upload_killed_after_its_job_moved_is_finished_by_the_async_retry(
    stack: Stack, crashes: Crashes
) -> None:
    crashes({"on_upload.after_job": 1.0})
    tag = marker()
    registered = stack.api(
        "POST",
        "/v1/uploads",
        json={
            "filename": f"{tag}.png",
            "content_type": "image/png",
            "box_prompts": [BOX],
            "webhook_url": stack.hook_url,
            "metadata": {"test": tag},
        },
    )
    assert registered.status_code == 201, registered.text
    form = registered.json()["upload"]
    posted = httpx.post(
        form["url"], data=form["fields"], timeout=TIMEOUT, files={"file": ("x", unique_scene())}
    )
    assert posted.status_code in (200, 201, 204), posted.text

    delivery = stack.wait_marker(tag)

    assert delivery.payload is not None and delivery.payload["data"]["id"] == registered.json()["id"]
    assert delivery.payload["data"]["status"] == "succeeded"
    assert injected(stack, "on_upload.after_job") == 1
