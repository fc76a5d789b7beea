"""The reconcile sweep on the local stack: a job whose execution was stopped behind maskgate's back is
restarted and succeeds with one WaveSpeed submission and one final webhook; a stopped delivery unit
is recovered; a dry run repairs nothing."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from maskgate_local.demo.receiver import WebhookReceiver
from maskgate_local.demo.sample import PANEL
from maskgate_local.stack.servers import free_port, serve_in_thread
from tests.e2e.conftest import Stack
from tests.support.images import unique_scene

pytestmark = pytest.mark.e2e
BOX = {"x_min": PANEL[0], "y_min": PANEL[1], "x_max": PANEL[2] + 1, "y_max": PANEL[3] + 1}


def wait(condition: Callable[[], Any], *, timeout: float = 30.0, what: str) -> Any:
    """The first truthy value of ``condition()``, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)  # polling a condition with a deadline, not waiting blindly
    raise TimeoutError(f"{what} within {timeout}s")


@pytest.fixture
def reconcile(dev_process: tuple[dict[str, Any], Path]) -> Callable[..., list[str]]:
    """``maskgate reconcile`` against the stack's ready file; its output lines (exit 0 asserted)."""
    _, log = dev_process
    ready_file = log.parent / "ready.json"

    def run(*args: str) -> list[str]:
        command = [sys.executable, "-m", "maskgate_local.cli.reconcile", "--ready-file", str(ready_file)]
        done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    return run


def submit(stack: Stack, hook_url: str, marker: str) -> dict[str, Any]:
    image = "data:image/png;base64," + base64.b64encode(unique_scene()).decode()
    body = {"image": image, "box_prompts": [BOX], "webhook_url": hook_url, "metadata": {"test": marker}}
    response = stack.api("POST", "/v1/segmentations", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


def job_of(stack: Stack, job_id: str) -> dict[str, Any]:
    return dict(stack.api("GET", f"/v1/segmentations/{job_id}").json())


def execution_status(stack: Stack, machine_arn: str, name: str) -> str | None:
    sfn = stack.aws("stepfunctions")
    arn = machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    try:
        return str(sfn.describe_execution(executionArn=arn)["status"])
    except sfn.exceptions.ExecutionDoesNotExist:
        return None


def stop_execution(stack: Stack, machine_arn: str, name: str) -> None:
    arn = machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    stack.aws("stepfunctions").stop_execution(executionArn=arn)  # behind maskgate's back
    # it ends once its current step gives way (moto then reports it FAILED, AWS ABORTED)
    wait(lambda: execution_status(stack, machine_arn, name) != "RUNNING", what=f"{name} stopped")


def repairs_of(lines: list[str], job_id: str) -> list[list[str]]:
    return [line.split() for line in lines[1:] if job_id in line.split()]


def test_a_stopped_job_is_restarted_and_succeeds_with_one_submission_and_one_webhook(
    stack: Stack, faults: Any, reconcile: Callable[..., list[str]]
) -> None:
    faults(latency_s=[3, 3])  # the prediction takes 3 s: time to stop the execution while it waits
    marker = uuid.uuid4().hex[:12]
    job = submit(stack, stack.hook_url, marker)
    machine = stack.ready["state_machine_arn"]
    wait(lambda: job_of(stack, job["id"])["status"] in ("submitted", "processing"), what="the job submitted")
    stop_execution(stack, machine, job["id"])

    # a dry run reports the restart and repairs nothing
    dry = reconcile("--dry-run", "--grace-seconds", "0")
    assert dry[0].startswith("maskgate reconcile --dry-run: checked ")
    assert repairs_of(dry, job["id"]) == [["would", "restart", "stalled", job["id"], f"{job['id']}-r1"]]
    assert execution_status(stack, machine, f"{job['id']}-r1") is None

    lines = reconcile("--grace-seconds", "0")
    assert repairs_of(lines, job["id"]) == [["restart", "stalled", job["id"], f"{job['id']}-r1"]]
    delivery = stack.wait_marker(marker, timeout=60)
    assert delivery.payload is not None and delivery.payload["type"] == "segmentation.succeeded"
    shown = job_of(stack, job["id"])
    assert shown["status"] == "succeeded" and len(shown["masks"]) == 1
    submissions = stack.emulator("GET", "/_emulator/stats").json()["submissions_by_image"]
    assert [n for image, n in submissions.items() if job["id"] in image] == [1]
    assert len(stack.receiver.for_job(job["id"])) == 1
    assert [d["outcome"] for d in shown["deliveries"]] == ["delivered"]


def test_a_stopped_delivery_unit_is_recovered_when_the_receiver_is_back(
    stack: Stack, reconcile: Callable[..., list[str]]
) -> None:
    port = free_port()  # the receiver is down: nothing listens here yet
    marker = uuid.uuid4().hex[:12]
    job = submit(stack, f"http://127.0.0.1:{port}/hooks", marker)
    msg_id = "msg_" + job["id"].removeprefix("seg_") + "_succeeded"
    delivery_machine = stack.ready["state_machine_arn"].replace("-segmentation", "-webhook-delivery")
    wait(lambda: execution_status(stack, delivery_machine, msg_id) == "RUNNING", what="the delivery unit")
    stop_execution(stack, delivery_machine, msg_id)
    assert job_of(stack, job["id"])["deliveries"][-1]["outcome"] == "retrying"

    receiver = WebhookReceiver(secret=stack.ready["webhook_secret"])
    server = serve_in_thread(receiver, port=port)
    try:
        # the last attempt's retry is due within a second (the local schedule): sweep until it is
        recovered = wait(
            lambda: repairs_of(reconcile("--grace-seconds", "0"), job["id"]), timeout=20, what="the recovery"
        )
        assert recovered == [["start", "unit", "webhook", job["id"], f"{msg_id}-s1"]]
        delivered = receiver.wait_for(job["id"], timeout=30)
        assert delivered.headers["webhook-id"] == msg_id
        shown = wait(
            lambda: (j := job_of(stack, job["id"]))["deliveries"][-1]["outcome"] == "delivered" and j,
            what="the delivery recorded",
        )
        assert [d["outcome"] for d in shown["deliveries"]].count("delivered") == 1
    finally:
        server.stop()
