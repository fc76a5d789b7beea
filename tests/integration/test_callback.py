"""WaveSpeed's callback through the api function: verified before any lookup, replay-safe, and it
resumes (or fails) the job's waiting task. Signatures are computed here with hmac, independently."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from maskgate import clients
from maskgate.contracts.job import JobStatus
from tests.integration.conftest import Aws, FakeTasks, problem
from tests.integration.seeds import queued_job
from tests.support.artefacts import LambdaContext, event, load_handler

SECRET = "whsec_" + "c2VjcmV0LWZvci13YXZlc3BlZWQtY2FsbGJhY2tz"


@pytest.fixture
def api(aws: Aws, tasks: FakeTasks, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(clients, "wavespeed_webhook_secret", lambda: SECRET)
    return load_handler("api")


def callback(
    job_id: str,
    *,
    status: str = "completed",
    prediction: str = "pred_0001",
    msg_id: str = "msg_1",
    age: int = 0,
    secret: str = SECRET,
    error: str = "",
    token: str = "cb-token",
) -> dict[str, Any]:
    sample = event("api_wavespeed_callback")
    body = json.loads(sample["body"])
    body.update({"id": prediction, "status": status, "error": error})
    raw = json.dumps(body)
    timestamp = str(int(time.time()) - age)
    key = secret.removeprefix("whsec_").encode()
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{raw}".encode(), hashlib.sha256).hexdigest()
    sample["body"] = raw
    sample["headers"].update(
        {
            "webhook-id": msg_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": f"v3,{digest}",
            "content-length": str(len(raw)),
        }
    )
    sample["rawQueryString"] = f"job={job_id}&token={token}"
    sample["queryStringParameters"] = {"job": job_id, "token": token}
    return sample


def waiting_job(aws: Aws, prediction: str = "pred_0001") -> str:
    job = queued_job(
        aws,
        status=JobStatus.SUBMITTED,
        prediction_id=prediction,
        submit_attempt="a1",
        callback_token="cb-token",
    )
    clients.job_store().set_task_token(job.id, "submit-token")
    return job.id


def test_callback_completed_resumes_the_waiting_task(api: Any, aws: Aws, tasks: FakeTasks) -> None:
    job_id = waiting_job(aws)
    response = api.handler(callback(job_id), LambdaContext())
    assert (response["statusCode"], json.loads(response["body"])) == (200, {"outcome": "resumed"})
    assert tasks.calls == [("success", "submit-token", {"job_id": job_id, "prediction_id": "pred_0001"})]


def test_callback_failed_records_the_error_then_fails_the_task(api: Any, aws: Aws, tasks: FakeTasks) -> None:
    job_id = waiting_job(aws)
    api.handler(callback(job_id, status="failed", error="no object found"), LambdaContext())
    job = clients.job_store().get(job_id)
    assert job.status is JobStatus.FAILED and job.error is not None
    assert (job.error.type, job.error.message) == ("upstream_failed", "no object found")
    assert tasks.calls == [
        ("failure", "submit-token", {"error": "UpstreamFailed", "cause": "no object found"})
    ]


def test_callback_with_a_forged_signature_is_401_and_changes_nothing(
    api: Any, aws: Aws, tasks: FakeTasks
) -> None:
    job_id = waiting_job(aws)
    response = api.handler(callback(job_id, secret="whsec_bm90LXRoZS1zZWNyZXQ="), LambdaContext())
    assert response["statusCode"] == 401 and problem(response)["type"] == "unauthorized"
    assert tasks.calls == []


def test_callback_older_than_five_minutes_is_401(api: Any, aws: Aws, tasks: FakeTasks) -> None:
    response = api.handler(callback(waiting_job(aws), age=301), LambdaContext())
    assert response["statusCode"] == 401 and tasks.calls == []


def test_callback_without_signature_headers_is_401(api: Any, aws: Aws, tasks: FakeTasks) -> None:
    sample = callback(waiting_job(aws))
    del sample["headers"]["webhook-signature"]
    assert api.handler(sample, LambdaContext())["statusCode"] == 401


def test_callback_replayed_id_changes_nothing_the_second_time(api: Any, aws: Aws, tasks: FakeTasks) -> None:
    sample = callback(waiting_job(aws))
    api.handler(sample, LambdaContext())
    again = api.handler(sample, LambdaContext())
    assert json.loads(again["body"]) == {"outcome": "duplicate"}
    assert len(tasks.calls) == 1


def test_callback_for_an_unknown_job_is_404(api: Any, aws: Aws, tasks: FakeTasks) -> None:
    response = api.handler(callback("seg_01KAXJ2N3Y8Z4Q6R7S9T0V1W2X"), LambdaContext())
    assert response["statusCode"] == 404 and tasks.calls == []


def test_callback_for_another_prediction_is_404(api: Any, aws: Aws, tasks: FakeTasks) -> None:
    response = api.handler(callback(waiting_job(aws), prediction="pred_other"), LambdaContext())
    assert response["statusCode"] == 404 and tasks.calls == []


def test_callback_after_the_task_timed_out_is_answered_2xx_and_changes_nothing(
    api: Any, aws: Aws, tasks: FakeTasks
) -> None:
    tasks.gone = True
    job_id = waiting_job(aws)
    response = api.handler(callback(job_id), LambdaContext())
    assert (response["statusCode"], json.loads(response["body"])) == (200, {"outcome": "late"})
    assert clients.job_store().get(job_id).status is JobStatus.SUBMITTED


def test_callback_for_a_still_running_prediction_is_ignored(api: Any, aws: Aws, tasks: FakeTasks) -> None:
    response = api.handler(callback(waiting_job(aws), status="processing"), LambdaContext())
    assert json.loads(response["body"]) == {"outcome": "ignored"} and tasks.calls == []
