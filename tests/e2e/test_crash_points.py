"""The money invariants on the local stack as users run it, with a crash injected at each workflow
crash point (maskgate.crashpoints): WaveSpeed is paid at most once per job, a completed prediction
ends its job succeeded, exactly one final webhook-id per job reaches the receiver (a retried delivery
repeats that id and body), and no admission slot is left held. The workflow's real Retry and Catch
(statemachine/segmentation.asl.json) decide what follows each crash."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from maskgate_local.demo.receiver import Delivery, WebhookReceiver
from maskgate_local.stack.servers import serve_in_thread
from tests.e2e.conftest import Crashes, Stack, dev_subprocess, injected
from tests.e2e.test_vertical_slice import BOX, data_uri, marker

pytestmark = pytest.mark.e2e
SETTLE_TIMEOUT_S = 30.0
SLOTS_KEY = "LIMIT#wavespeed"  # the admission slots item in the jobs table (maskgate.stores.admission)


def submit(stack: Stack) -> str:
    body = {
        "image": data_uri(),
        "box_prompts": [BOX],
        "webhook_url": stack.hook_url,
        "metadata": {"test": marker()},
    }
    response = stack.api("POST", "/v1/segmentations", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def disarm_after_first_crash(stack: Stack, point: str, timeout: float = SETTLE_TIMEOUT_S) -> None:
    """Set ``point``'s rate back to 0 as soon as its first crash is injected.

    A rate of 1.0 crashes every pass, and a retried step that passes the point again would crash
    until its retries run out: the crash a test means is one lost invocation, not a dead step."""
    deadline = time.monotonic() + timeout
    while injected(stack, point) < 1:
        if time.monotonic() > deadline:
            raise AssertionError(f"no crash injected at {point} within {timeout} s")
        time.sleep(0.005)  # polling a condition with a deadline, not waiting blindly
    stack.control("PUT", "/crashes", json={point: 0.0}).raise_for_status()


def settled(stack: Stack, job_id: str, timeout: float = SETTLE_TIMEOUT_S) -> dict[str, Any]:
    """The job once its execution has ended and its final webhook's delivery is recorded."""
    sfn = stack.aws("stepfunctions")
    arn = f"{stack.ready['state_machine_arn'].replace(':stateMachine:', ':execution:')}:{job_id}"
    deadline = time.monotonic() + timeout
    while True:
        status = sfn.describe_execution(executionArn=arn)["status"]
        job = dict(stack.api("GET", f"/v1/segmentations/{job_id}").json())
        recorded = [d["outcome"] for d in job.get("deliveries") or []]
        if status != "RUNNING" and "delivered" in recorded:
            assert status == "SUCCEEDED", f"execution of {job_id} ended {status}"
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"{job_id} not settled within {timeout} s: {status}, {recorded}")
        time.sleep(0.1)  # polling a condition with a deadline, not waiting blindly


def history(stack: Stack, job_id: str) -> str:
    sfn = stack.aws("stepfunctions")
    arn = f"{stack.ready['state_machine_arn'].replace(':stateMachine:', ':execution:')}:{job_id}"
    return json.dumps(sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"], default=str)


def submissions(stack: Stack, job_id: str) -> int:
    """Accepted WaveSpeed submissions of the job's image (stats key an image by its URL, and the job's
    input is stored under inputs/<job_id>/, so only this job's submissions carry its id)."""
    by_image = stack.emulator("GET", "/_emulator/stats").json()["submissions_by_image"]
    mine = [count for image, count in by_image.items() if job_id in image]
    assert len(mine) <= 1, f"{job_id} was sent to WaveSpeed under several image URLs: {by_image}"
    return sum(mine)


def arrived(stack: Stack, job_id: str) -> list[Delivery]:
    """Every delivery for the job that reached the receiver, verified or not (``for_job`` keeps only
    the verified ones)."""
    return [d for d in list(stack.receiver.deliveries) if job_id.encode() in d.body]


def slot_held(stack: Stack, job_id: str) -> bool:
    item = stack.aws("dynamodb").get_item(
        TableName=stack.ready["table"], Key={"pk": {"S": SLOTS_KEY}}, ConsistentRead=True
    )
    return job_id in item.get("Item", {}).get("slots", {}).get("M", {})


def assert_invariants(stack: Stack, job: dict[str, Any], *, status: str, point: str) -> None:
    """Paid once, ended ``status`` with one final webhook-id (every delivery of it the same bytes),
    no slot held, and the crash at ``point`` happened in this job's execution."""
    job_id = job["id"]
    assert job["status"] == status
    if status == "succeeded":  # the paid result was kept
        assert job["prediction_id"] and len(job["masks"]) == 1
    assert submissions(stack, job_id) == 1
    deliveries = stack.receiver.for_job(job_id)
    assert deliveries and all(d.verified for d in arrived(stack, job_id))
    recorded = {d["webhook_id"] for d in job["deliveries"]}
    assert len(recorded) == 1
    assert {d.headers["webhook-id"] for d in deliveries} == recorded
    assert len({d.body for d in deliveries}) == 1
    assert {(d.payload or {}).get("type") for d in deliveries} == {f"segmentation.{status}"}
    assert not slot_held(stack, job_id)
    assert injected(stack, point) >= 1
    assert f"injected crash at {point}" in history(stack, job_id)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of this module's own whose Submit waits 5 s for the callback (1 s by default locally): a
    Submit slowed past its wait (a cold import, a loaded machine) times out into Poll, and a crash in
    that invocation then reaches no task, so the history would not name it (the invariants hold all
    the same, which the fault run shows)."""
    folder = tmp_path_factory.mktemp("dev-crash-points")
    with dev_subprocess(folder, "--parameter-overrides", "PollInitialSeconds=5") as (ready, _):
        receiver = WebhookReceiver(secret=ready["webhook_secret"])
        server = serve_in_thread(receiver)
        try:
            yield Stack(ready=ready, receiver=receiver, hook_url=f"{server.url}/hooks")
        finally:
            server.stop()


@pytest.fixture(scope="module", autouse=True)
def warm(stack: Stack) -> None:
    """One job through the workflow first: every function imported, as in a warm container."""
    settled(stack, submit(stack))


def test_submit_crashed_after_the_post_pays_once_and_adopts_the_prediction(
    stack: Stack, crashes: Crashes
) -> None:
    # every pass would crash: the retried Submit must find the intent and never post again
    crashes({"submit.after_post": 1.0})

    job = settled(stack, submit(stack))

    assert_invariants(stack, job, status="succeeded", point="submit.after_post")
    assert injected(stack, "submit.after_post") == 1


def test_submit_crashed_after_recording_pays_once_and_succeeds(stack: Stack, crashes: Crashes) -> None:
    crashes({"submit.after_record": 1.0})

    job = settled(stack, submit(stack))

    assert_invariants(stack, job, status="succeeded", point="submit.after_record")
    assert injected(stack, "submit.after_record") == 1


def test_store_crashed_after_the_masks_keeps_the_paid_result(stack: Stack, crashes: Crashes) -> None:
    # a retried Store copies the masks again: crash once, as a lost invocation does
    crashes({"store.after_masks": 1.0})

    job_id = submit(stack)
    disarm_after_first_crash(stack, "store.after_masks")
    job = settled(stack, job_id)

    assert_invariants(stack, job, status="succeeded", point="store.after_masks")


def test_store_crashed_after_succeeding_sends_one_webhook(stack: Stack, crashes: Crashes) -> None:
    # every pass would crash: the retried Store must find the job succeeded and only notify
    crashes({"store.after_succeeded": 1.0})

    job = settled(stack, submit(stack))

    assert_invariants(stack, job, status="succeeded", point="store.after_succeeded")
    assert injected(stack, "store.after_succeeded") == 1
    assert len(stack.receiver.for_job(job["id"])) == 1  # the crash came before the first attempt


def test_store_crashed_after_sending_its_webhook_resends_the_same_one(stack: Stack, crashes: Crashes) -> None:
    # Store makes the success webhook's first attempt: sent, then the invocation is lost
    crashes({"notify.after_send": 1.0})

    job_id = submit(stack)
    disarm_after_first_crash(stack, "notify.after_send")
    job = settled(stack, job_id)

    assert_invariants(stack, job, status="succeeded", point="notify.after_send")
    assert len(stack.receiver.for_job(job_id)) >= 2  # sent, not recorded, sent again


def test_notify_crashed_after_sending_resends_the_same_failed_webhook(
    stack: Stack, crashes: Crashes, faults: Any
) -> None:
    faults(prediction_failed=1.0)
    crashes({"notify.after_send": 1.0})

    job_id = submit(stack)
    disarm_after_first_crash(stack, "notify.after_send")
    job = settled(stack, job_id)

    assert_invariants(stack, job, status="failed", point="notify.after_send")
    assert job["error"]["type"] == "upstream_failed"
    assert len(stack.receiver.for_job(job_id)) >= 2  # sent, not recorded, sent again


def test_fail_crashed_after_recording_ends_failed_with_one_webhook(
    stack: Stack, crashes: Crashes, faults: Any
) -> None:
    # a retried Fail passes the point again: crash once, as a lost invocation does
    faults(prediction_failed=1.0)
    crashes({"fail.after_record": 1.0})

    job_id = submit(stack)
    disarm_after_first_crash(stack, "fail.after_record")
    job = settled(stack, job_id)

    assert_invariants(stack, job, status="failed", point="fail.after_record")
    assert job["error"]["type"] == "upstream_failed"
    assert len(stack.receiver.for_job(job_id)) == 1  # the crash came before Notify


def test_callback_crashed_after_marking_pays_once_and_succeeds(stack: Stack, crashes: Crashes) -> None:
    # the api function, not the workflow, crashes: no execution history names it
    crashes({"callback.after_mark": 1.0})

    job = settled(stack, submit(stack))

    assert job["status"] == "succeeded" and job["prediction_id"] and len(job["masks"]) == 1
    assert submissions(stack, job["id"]) == 1
    deliveries = stack.receiver.for_job(job["id"])
    assert len({d.headers["webhook-id"] for d in deliveries}) == len({d.body for d in deliveries}) == 1
    assert not slot_held(stack, job["id"])
    assert injected(stack, "callback.after_mark") == 1
