"""The local stack's control server and ``--parameter-overrides``, on ``maskgate dev`` as users run it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from maskgate import crashpoints
from tests.e2e.conftest import Crashes, Stack, aws_client, dev_subprocess, injected
from tests.e2e.test_vertical_slice import BOX, data_uri

pytestmark = pytest.mark.e2e


def segmentation(stack: Stack) -> Any:
    return stack.api("POST", "/v1/segmentations", json={"image": data_uri(), "box_prompts": [BOX]})


def test_control_lists_every_crash_point_with_its_rate_and_count(stack: Stack) -> None:
    response = stack.control("GET", "/crashes")

    assert response.status_code == 200
    points = response.json()["points"]
    assert set(points) == set(crashpoints.POINTS)
    for name, point in points.items():
        assert point == {"description": crashpoints.POINTS[name], "rate": 0.0, "injected": 0}


def test_control_put_sets_a_rate_and_reset_clears_it(stack: Stack, crashes: Crashes) -> None:
    # given
    crashes({})

    # when
    put = stack.control("PUT", "/crashes", json={"notify.after_send": 0.25})
    shown = stack.control("GET", "/crashes").json()
    reset = stack.control("POST", "/reset")

    # then
    assert put.status_code == 200 and put.json() == shown
    assert shown["points"]["notify.after_send"]["rate"] == 0.25
    assert reset.status_code == 200
    assert {p["rate"] for p in reset.json()["points"].values()} == {0.0}


def test_control_put_refuses_an_unknown_point_and_changes_nothing(stack: Stack, crashes: Crashes) -> None:
    before = crashes({"store.after_masks": 0.5})

    response = stack.control("PUT", "/crashes", json={"store.after_masks": 1.0, "store.nowhere": 1.0})

    assert response.status_code == 400
    assert "store.nowhere" in response.json()["message"]
    assert stack.control("GET", "/crashes").json() == before


def test_workflow_task_crash_reaches_step_functions_as_a_timeout(stack: Stack, crashes: Crashes) -> None:
    crashes({"submit.after_post": 1.0})

    job = segmentation(stack)
    assert job.status_code == 202, job.text
    history = _history_until(stack, job.json()["id"], lambda text: "Sandbox.Timedout" in text)

    assert "injected crash at submit.after_post" in history
    assert injected(stack, "submit.after_post") >= 1


def test_api_crash_answers_500_and_the_next_request_is_served(stack: Stack, crashes: Crashes) -> None:
    crashes({"api.after_job": 1.0})

    crashed = segmentation(stack)
    if crashed.status_code == 202 and injected(stack, "api.after_job") == 0:
        pytest.skip("the api function does not reach the api.after_job crash point yet")
    stack.control("POST", "/reset").raise_for_status()
    served = segmentation(stack)

    assert (crashed.status_code, crashed.json()) == (500, {"message": "Internal Server Error"})
    assert served.status_code == 202, served.text


def test_api_crash_reaches_the_caller_as_a_5xx_and_the_job_still_ends(
    stack: Stack, crashes: Crashes, faults: Any
) -> None:
    # given: the api function crashes once it has acted on WaveSpeed's callback, before answering it
    faults()
    crashes({"callback.after_mark": 1.0})

    # when
    job = stack.api("POST", "/v1/segmentations", json=_request(stack))
    assert job.status_code == 202, job.text
    delivery = stack.receiver.wait_for(job.json()["id"])

    # then: WaveSpeed saw a failed callback (the gateway's 500), the job succeeded, the API still serves
    assert delivery.payload is not None and delivery.payload["data"]["status"] == "succeeded"
    assert injected(stack, "callback.after_mark") >= 1
    assert stack.emulator("GET", "/_emulator/stats").json()["callbacks_failed"] >= 1
    assert stack.api("GET", f"/v1/segmentations/{job.json()['id']}").status_code == 200


def _request(stack: Stack) -> dict[str, Any]:
    return {"image": data_uri(), "box_prompts": [BOX], "webhook_url": stack.hook_url}


def _history_until(stack: Stack, job_id: str, done: Callable[[str], bool], timeout: float = 60.0) -> str:
    """The job's execution history as JSON text, once ``done`` holds for it."""
    sfn = stack.aws("stepfunctions")
    arn = f"{stack.ready['state_machine_arn'].replace(':stateMachine:', ':execution:')}:{job_id}"
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = json.dumps(sfn.get_execution_history(executionArn=arn)["events"], default=str)
        except sfn.exceptions.ExecutionDoesNotExist:
            text = ""
        if done(text):
            return text
        time.sleep(0.2)  # polling a condition with a deadline, not waiting blindly
    raise AssertionError(f"the execution of {job_id} never matched within {timeout} s: {text[-2000:]}")


@pytest.fixture(scope="module")
def overridden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("dev-overrides")
    overrides = "WaveSpeedConcurrency=2 PollMaxSeconds=3"  # the single-string form
    with dev_subprocess(folder, "--parameter-overrides", overrides) as (ready, _):
        yield ready


def test_parameter_overrides_reach_every_functions_environment(overridden: dict[str, Any]) -> None:
    functions = aws_client(overridden, "lambda").list_functions()["Functions"]

    environments = [f["Environment"]["Variables"] for f in functions]
    assert environments
    assert {env["WAVESPEED_CONCURRENCY"] for env in environments} == {"2"}
    assert {env["MASKGATE_POLL_MAX_SECONDS"] for env in environments} == {"3"}
    assert {env["WAVESPEED_SUBMITS_PER_MINUTE"] for env in environments} == {"6000"}  # a local default
