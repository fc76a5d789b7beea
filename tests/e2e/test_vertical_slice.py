"""The vertical slice on the local stack: both ways in, through SAM3 (emulated), to masks in S3 and a
verified webhook; the three prompt kinds; awkward keys; bad input; upstream failures and faults."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from maskgate_local.demo.sample import DISC, PANEL
from tests.e2e.conftest import TIMEOUT, Stack
from tests.support.images import unique_scene

pytestmark = pytest.mark.e2e
BOX = {"x_min": PANEL[0], "y_min": PANEL[1], "x_max": PANEL[2] + 1, "y_max": PANEL[3] + 1}
DISC_CENTRE = {"x": (DISC[0] + DISC[2]) // 2, "y": (DISC[1] + DISC[3]) // 2, "label": 1}


def marker() -> str:
    return uuid.uuid4().hex[:12]


def data_uri(image: bytes = b"") -> str:
    return "data:image/png;base64," + base64.b64encode(image or unique_scene()).decode()


def mask_of(delivery_payload: dict[str, Any], index: int = 0) -> Image.Image:
    """Download a mask through the webhook's signed link (302 → presigned S3 URL)."""
    url = delivery_payload["data"]["masks"][index]["url"]
    response = httpx.get(url, follow_redirects=True, timeout=TIMEOUT).raise_for_status()
    return Image.open(io.BytesIO(response.content))


def white(image: Image.Image) -> set[tuple[int, int]]:
    grey = image.convert("L")
    return {(x, y) for y in range(grey.height) for x in range(grey.width) if grey.getpixel((x, y)) >= 128}


def box_pixels(box: dict[str, int]) -> set[tuple[int, int]]:
    return {(x, y) for x in range(box["x_min"], box["x_max"]) for y in range(box["y_min"], box["y_max"])}


def submit(stack: Stack, **body: Any) -> dict[str, Any]:
    request = {"image": data_uri(), "webhook_url": stack.hook_url, **body}
    response = stack.api("POST", "/v1/segmentations", json=request)
    assert response.status_code == 202, response.text
    return dict(response.json())


def test_s3_upload_reaches_a_verified_webhook_with_the_box_mask(stack: Stack) -> None:
    tag = marker()
    stack.upload(
        f"uploads/{tag}.png",
        unique_scene(),
        {"box_prompts": [BOX], "webhook_url": stack.hook_url, "metadata": {"test": tag}},
    )
    delivery = stack.wait_marker(tag)
    assert delivery.payload is not None and delivery.payload["type"] == "segmentation.succeeded"
    assert white(mask_of(delivery.payload)) == box_pixels(BOX)


def test_api_job_webhook_then_get_shows_masks_and_the_delivery(stack: Stack) -> None:
    job = submit(stack, box_prompts=[BOX], metadata={"test": marker()})
    delivery = stack.receiver.wait_for(job["id"])
    shown = stack.api("GET", f"/v1/segmentations/{job['id']}").json()
    assert shown["status"] == "succeeded" and shown["prediction_id"]
    [mask] = shown["masks"]
    stored = httpx.get(mask["url"], timeout=TIMEOUT).raise_for_status().content
    assert white(Image.open(io.BytesIO(stored))) == box_pixels(BOX)
    [attempt] = shown["deliveries"]
    assert attempt["outcome"] == "delivered" and attempt["webhook_id"] == delivery.headers["webhook-id"]


@pytest.mark.parametrize(
    ("prompts", "inside", "outside"),
    [
        ({"box_prompts": [BOX]}, (240, 120), (90, 110)),
        ({"point_prompts": [DISC_CENTRE]}, (90, 110), (240, 120)),
        ({"prompt": "the shapes"}, (90, 110), (5, 5)),
    ],
    ids=["boxes", "points", "text"],
)
def test_each_prompt_kind_yields_a_mask_of_its_object(
    stack: Stack, prompts: dict[str, Any], inside: tuple[int, int], outside: tuple[int, int]
) -> None:
    job = submit(stack, **prompts)
    delivery = stack.receiver.wait_for(job["id"])
    assert delivery.payload is not None and delivery.payload["data"]["status"] == "succeeded"
    mask = mask_of(delivery.payload).convert("L")
    assert (mask.getpixel(inside), mask.getpixel(outside)) == (255, 0)


@pytest.mark.parametrize("output_format", ["jpeg", "webp"])
def test_output_format_and_apply_mask_are_honoured(stack: Stack, output_format: str) -> None:
    job = submit(stack, box_prompts=[BOX], output_format=output_format, apply_mask=True)
    delivery = stack.receiver.wait_for(job["id"])
    assert delivery.payload is not None
    assert delivery.payload["data"]["masks"][0]["format"] == output_format
    assert mask_of(delivery.payload).format == output_format.upper()


def test_upload_key_with_spaces_and_non_ascii_is_found(stack: Stack) -> None:
    tag, image = marker(), unique_scene()
    key = f"uploads/my photos/café ü {tag}.png"
    stack.upload(key, image, {"box_prompts": [BOX], "webhook_url": stack.hook_url, "metadata": {"test": tag}})
    delivery = stack.wait_marker(tag)
    assert delivery.payload is not None and delivery.payload["data"]["status"] == "succeeded"
    job_id = delivery.payload["data"]["id"]
    shown = stack.api("GET", f"/v1/segmentations/{job_id}").json()
    # the decoded key was found and read: the job ran on the validated copy of exactly its bytes
    assert shown["image"]["key"] == f"inputs/{job_id}/image.png"
    copy = stack.s3().get_object(Bucket=stack.ready["bucket"], Key=shown["image"]["key"])["Body"].read()
    assert copy == stack.s3().get_object(Bucket=stack.ready["bucket"], Key=key)["Body"].read() == image


def test_non_image_upload_fails_invalid_image_with_a_webhook(stack: Stack) -> None:
    tag = marker()
    stack.upload(
        f"uploads/{tag}.png",
        b"%PDF-1.7 not an image",
        {"prompt": "x", "webhook_url": stack.hook_url, "metadata": {"test": tag}},
    )
    delivery = stack.wait_marker(tag)
    assert delivery.payload is not None and delivery.payload["type"] == "segmentation.failed"
    assert delivery.payload["data"]["error"]["type"] == "invalid_image"


def test_upstream_failed_prediction_ends_upstream_failed(stack: Stack, faults: Any) -> None:
    faults(prediction_failed=1.0)
    job = submit(stack, box_prompts=[BOX])
    delivery = stack.receiver.wait_for(job["id"])
    assert delivery.payload is not None and delivery.payload["data"]["error"]["type"] == "upstream_failed"


def test_bad_output_file_ends_output_invalid(stack: Stack, faults: Any) -> None:
    faults(bad_output=1.0)
    job = submit(stack, box_prompts=[BOX])
    delivery = stack.receiver.wait_for(job["id"])
    assert delivery.payload is not None and delivery.payload["data"]["error"]["type"] == "output_invalid"


def test_transient_429_and_5xx_faults_still_succeed_without_duplicate_submissions(
    stack: Stack, faults: Any
) -> None:
    # Sequential jobs keep the seeded emulator's fault draws in one order, so this test is repeatable.
    faults(submit_429=0.3, submit_5xx=0.3, result_5xx=0.3, drop_callback=0.5)
    statuses = []
    for _ in range(3):
        job = submit(stack, box_prompts=[BOX])
        delivery = stack.receiver.wait_for(job["id"], timeout=180)
        statuses.append((delivery.payload or {})["data"]["status"])
    stats = stack.emulator("GET", "/_emulator/stats").json()
    assert statuses == ["succeeded"] * 3
    assert stats["refused_429"] >= 1 and stats["refused_503"] >= 1 and stats["result_5xx"] >= 1
    assert stats["submissions"] == 3  # accepted submissions: one per job, none repeated


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        ("{not json", 400, "malformed_json"),
        ({"image": "x"}, 422, "missing_prompt"),
        ({"prompt": "x"}, 422, "invalid_request"),
        ({"image": "data:image/png;base64,aGVsbG8=", "prompt": "x"}, 422, "invalid_image"),
        ({"image": "ftp://example.com/a.png", "prompt": "x"}, 422, "url_not_allowed"),
        (
            {"image": "IMAGE", "prompt": "x", "webhook_url": "https://example.com/hook"},
            422,
            "url_not_allowed",
        ),
        ({"image": "IMAGE", "point_prompts": [{"x": 999, "y": 1}]}, 422, "invalid_request"),
        (
            {"image": "IMAGE", "box_prompts": [{"x_min": 5, "y_min": 5, "x_max": 5, "y_max": 9}]},
            422,
            "invalid_request",
        ),
        ({"image": "IMAGE", "prompt": "x", "output_format": "gif"}, 422, "invalid_request"),
        ({"image": "IMAGE", "prompt": "x", "extra": 1}, 422, "invalid_request"),
        ({"image": "IMAGE", "prompt": "   "}, 422, "invalid_request"),
    ],
    ids=[
        "malformed",
        "no-prompt",
        "no-image",
        "not-an-image",
        "image-scheme",
        "webhook-public",
        "point-outside",
        "empty-box",
        "format",
        "unknown-field",
        "blank-text",
    ],
)
def test_bad_input_gets_the_documented_problem(stack: Stack, body: Any, status: int, error_type: str) -> None:
    if isinstance(body, dict) and body.get("image") == "IMAGE":
        body = {**body, "image": data_uri()}
    content = body if isinstance(body, str) else None
    response = stack.api(
        "POST",
        "/v1/segmentations",
        content=content,
        json=None if content else body,
        headers={"content-type": "application/json"},
    )
    assert (response.status_code, response.headers["content-type"]) == (status, "application/problem+json")
    problem = response.json()
    assert problem["type"] == error_type and problem["status"] == status and problem["detail"]


def test_bad_api_key_is_401_problem(stack: Stack) -> None:
    response = stack.api("GET", "/v1/segmentations/seg_01KAXJ2N3Y8Z4Q6R7S9T0V1W2X", key="mg_wrong")
    assert response.status_code == 401 and response.json()["type"] == "unauthorized"


def test_body_over_10_mb_is_the_gateways_own_413(stack: Stack) -> None:
    response = stack.api("POST", "/v1/segmentations", content=b"x" * (10 * 1024 * 1024 + 1))
    assert response.status_code == 413 and response.json() == {"message": "Request Entity Too Large"}


def test_body_over_5_mb_is_maskgates_413_problem(stack: Stack) -> None:
    response = stack.api(
        "POST", "/v1/segmentations", json={"image": "data:image/png;base64," + "A" * 5_300_000}
    )
    assert response.status_code == 413 and response.json()["type"] == "payload_too_large"
    assert "POST /v1/uploads" in response.json()["detail"]


def test_body_between_6_and_10_mb_never_reaches_the_function_a_bare_500_as_in_aws(stack: Stack) -> None:
    # the README's size bands: over Lambda's 6 MB invoke payload API Gateway answers by itself
    response = stack.api(
        "POST", "/v1/segmentations", json={"image": "data:image/png;base64," + "A" * 6_500_000}
    )
    assert response.status_code == 500 and response.json() == {"message": "Internal Server Error"}


def test_openapi_is_served(stack: Stack) -> None:
    schema = httpx.get(stack.ready["api_url"] + "/openapi.json", timeout=TIMEOUT).json()
    assert "/v1/segmentations" in schema["paths"]


def test_aws_cli_upload_to_the_printed_endpoint_starts_a_job(stack: Stack, tmp_path: Path) -> None:
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    assert aws, "the AWS CLI is a dev dependency (awscli)"
    tag = marker()
    image = tmp_path / "scene.png"
    image.write_bytes(unique_scene())
    request = {"box_prompts": [BOX], "webhook_url": stack.hook_url, "metadata": {"test": tag}}
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": stack.ready["region"],
    }
    subprocess.run(  # noqa: S603
        [
            aws,
            "s3api",
            "put-object",
            "--endpoint-url",
            stack.ready["aws_endpoint_url"],
            "--bucket",
            stack.ready["bucket"],
            "--key",
            f"uploads/cli/{tag}.png",
            "--body",
            str(image),
            "--metadata",
            json.dumps({"maskgate": json.dumps(request)}),
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=60,
    )
    delivery = stack.wait_marker(tag)
    assert delivery.payload is not None and delivery.payload["data"]["status"] == "succeeded"
    assert white(mask_of(delivery.payload)) == box_pixels(BOX)


def _states_of(stack: Stack, job_id: str) -> list[str]:
    sfn = stack.aws("stepfunctions")
    arn = f"{stack.ready['state_machine_arn'].replace(':stateMachine:', ':execution:')}:{job_id}"
    events = sfn.get_execution_history(executionArn=arn)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def test_callback_fast_path_is_two_states(stack: Stack) -> None:
    job = submit(stack, box_prompts=[BOX])
    delivery = stack.receiver.wait_for(job["id"])
    assert delivery.payload is not None and delivery.payload["data"]["status"] == "succeeded"
    assert _states_of(stack, job["id"]) == ["Submit", "Store"]  # Store makes the webhook's first attempt


def test_lost_callback_still_succeeds_by_polling(stack: Stack, faults: Any) -> None:
    faults(drop_callback=1.0)
    job = submit(stack, box_prompts=[BOX])
    delivery = stack.receiver.wait_for(job["id"])
    assert delivery.payload is not None and delivery.payload["data"]["status"] == "succeeded"
    assert "Poll" in _states_of(stack, job["id"])
    assert stack.emulator("GET", "/_emulator/stats").json()["callbacks_dropped"] >= 1


def test_duplicate_callback_produces_exactly_one_caller_webhook(stack: Stack, faults: Any) -> None:
    faults(duplicate_callback=1.0)
    job = submit(stack, box_prompts=[BOX])
    stack.receiver.wait_for(job["id"])
    stats = stack.emulator("GET", "/_emulator/stats").json()
    assert stats["callbacks_sent"] >= 2
    assert len(stack.receiver.for_job(job["id"])) == 1
    assert _states_of(stack, job["id"]) == ["Submit", "Store"]


def test_forged_callback_is_refused_and_changes_nothing(stack: Stack) -> None:
    job = submit(stack, box_prompts=[BOX])
    stack.receiver.wait_for(job["id"])
    body = json.dumps({"id": "pred_x", "status": "failed", "error": "forged"}).encode()
    response = httpx.post(
        f"{stack.ready['api_url']}/v1/callbacks/wavespeed",
        params={"job": job["id"]},
        content=body,
        headers={
            "webhook-id": "msg_forged",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v3," + "0" * 64,
            "content-type": "application/json",
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 401 and response.json()["type"] == "unauthorized"
    assert stack.api("GET", f"/v1/segmentations/{job['id']}").json()["status"] == "succeeded"


def test_webhook_retries_keep_the_id_and_body_until_delivered(stack: Stack) -> None:
    stack.receiver.script = [503, 500]
    job = submit(stack, box_prompts=[BOX])
    delivered = stack.receiver.wait_until(
        lambda p: p["data"]["id"] == job["id"] and len(stack.receiver.for_job(job["id"])) == 3, timeout=60
    )
    first, second, third = stack.receiver.for_job(job["id"])
    assert first.body == second.body == third.body == delivered.body
    assert len({d.headers["webhook-id"] for d in (first, second, third)}) == 1
    shown = stack.api("GET", f"/v1/segmentations/{job['id']}").json()
    assert [d["outcome"] for d in shown["deliveries"]] == ["retrying", "retrying", "delivered"]


def test_exhausted_webhook_is_dead_lettered_then_redelivered(stack: Stack) -> None:
    stack.receiver.script = [500] * 8  # the first attempt and the local schedule's seven retries
    job = submit(stack, box_prompts=[BOX])
    sqs = stack.aws("sqs")
    url = next(u for u in sqs.list_queues()["QueueUrls"] if "WebhookDeadLetter" in u)
    deadline = time.monotonic() + 60
    letters: list[dict[str, Any]] = []
    while not letters and time.monotonic() < deadline:
        found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        letters = [json.loads(m["Body"]) for m in found if json.loads(m["Body"])["job_id"] == job["id"]]
    assert letters, "no dead letter within 60 s"
    shown = stack.api("GET", f"/v1/segmentations/{job['id']}").json()
    assert [d["outcome"] for d in shown["deliveries"]][-1] == "dead_lettered"
    assert len(shown["deliveries"]) == 8
    # when the receiver is back, redelivery sends the same event with the same webhook-id
    response = stack.api("POST", f"/v1/segmentations/{job['id']}/deliveries")
    assert response.status_code == 202 and response.json()["webhook_id"] == letters[0]["webhook_id"]
    redelivered = stack.receiver.wait_until(
        lambda p: p["data"]["id"] == job["id"] and len(stack.receiver.for_job(job["id"])) == 9, timeout=30
    )
    assert redelivered.headers["webhook-id"] == letters[0]["webhook_id"]


def test_callback_for_an_unknown_job_is_refused(stack: Stack) -> None:
    body = json.dumps({"id": "pred_x", "status": "completed", "outputs": []}).encode()
    response = httpx.post(
        f"{stack.ready['api_url']}/v1/callbacks/wavespeed",
        params={"job": "seg_01KAXJ2N3Y8Z4Q6R7S9T0V1W2X"},
        content=body,
        headers={
            "webhook-id": "msg_x",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v3," + "0" * 64,
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 401  # the signature is checked before any lookup


def test_rotated_secret_signs_alongside_the_old_one(stack: Stack) -> None:
    from standardwebhooks import Webhook

    old = stack.receiver.secret
    rotated = stack.api("POST", "/v1/webhook-secret/rotate").json()
    try:
        job = submit(stack, box_prompts=[BOX])
        delivery = stack.receiver.wait_for(job["id"])  # verified with the old secret
        assert len(delivery.headers["webhook-signature"].split(" ")) == 2
        Webhook(rotated["webhook_secret"]).verify(delivery.body, delivery.headers)
    finally:
        stack.receiver.secret = rotated["webhook_secret"]
        assert old != rotated["webhook_secret"]


def test_cancel_stops_a_running_job_and_sends_segmentation_canceled(stack: Stack, faults: Any) -> None:
    faults(stuck=1.0)
    job = submit(stack, box_prompts=[BOX])
    response = stack.api("DELETE", f"/v1/segmentations/{job['id']}")
    assert response.status_code == 200 and response.json()["status"] == "canceled"
    delivery = stack.receiver.wait_for(job["id"])
    assert delivery.payload is not None and delivery.payload["type"] == "segmentation.canceled"
    assert stack.api("DELETE", f"/v1/segmentations/{job['id']}").status_code == 409
    listed = stack.api("GET", "/v1/segmentations", params={"status": "canceled", "limit": 100}).json()
    assert job["id"] in [j["id"] for j in listed["data"]]


def test_idempotency_key_replays_the_job_and_refuses_another_body(stack: Stack) -> None:
    key = f"e2e-{marker()}"
    body = {"image": data_uri(), "box_prompts": [BOX]}
    first = stack.api("POST", "/v1/segmentations", json=body, headers={"Idempotency-Key": key})
    second = stack.api("POST", "/v1/segmentations", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    other = stack.api(
        "POST", "/v1/segmentations", json={**body, "output_format": "webp"}, headers={"Idempotency-Key": key}
    )
    assert other.status_code == 409 and other.json()["type"] == "conflict"


def test_direct_upload_with_the_presigned_post_runs_the_job(stack: Stack) -> None:
    tag = marker()
    registered = stack.api(
        "POST",
        "/v1/uploads",
        json={
            "filename": f"scène {tag}.png",
            "content_type": "image/png",
            "box_prompts": [BOX],
            "webhook_url": stack.hook_url,
            "metadata": {"test": tag},
        },
    )
    assert registered.status_code == 201, registered.text
    form = registered.json()["upload"]
    posted = httpx.post(
        form["url"],
        data=form["fields"],
        timeout=TIMEOUT,
        files={"file": (f"scène {tag}.png", unique_scene(), "image/png")},
    )
    assert posted.status_code in (200, 201, 204), posted.text
    delivery = stack.wait_marker(tag)
    assert delivery.payload is not None and delivery.payload["data"]["id"] == registered.json()["id"]
    assert white(mask_of(delivery.payload)) == box_pixels(BOX)


def test_a_second_tenant_made_with_maskgate_keys_sees_nothing_of_the_first(stack: Stack) -> None:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": stack.ready["aws_endpoint_url"],
        "AWS_DEFAULT_REGION": stack.ready["region"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "MASKGATE_TABLE": stack.ready["table"],
    }
    created = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "maskgate_local.cli.main", "keys", "create", "--tenant", f"second-{marker()}"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    other = next(line.split()[2] for line in created.stdout.splitlines() if line.startswith("api key"))
    mine = submit(stack, box_prompts=[BOX])
    assert stack.api("GET", f"/v1/segmentations/{mine['id']}", key=other).status_code == 404
    assert stack.api("DELETE", f"/v1/segmentations/{mine['id']}", key=other).status_code == 404
    assert stack.api("GET", "/v1/segmentations", key=other).json()["data"] == []
    assert stack.api("GET", f"/v1/segmentations/{mine['id']}").status_code == 200


def test_docs_page_renders_the_openapi(stack: Stack) -> None:
    page = httpx.get(stack.ready["api_url"] + "/docs", timeout=TIMEOUT)
    assert page.status_code == 200 and "/openapi.json" in page.text
