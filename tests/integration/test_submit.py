"""The submit step on moto: the task token first, then at most one prediction, fed its sample event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from maskgate import clients
from maskgate.contracts.job import JobError, JobStatus
from maskgate.errors import JobNotSubmittable, PredictionTimedOut, UpstreamRateLimited, UpstreamRejected
from maskgate.settings import get_settings
from maskgate.steps.submit import LAST_SUBMIT_SECONDS
from tests.integration.conftest import Aws
from tests.integration.seeds import queued_job, submit_event
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import FakeWaveSpeed


def test_submit_sample_event_stores_the_token_then_submits_with_the_callback_url(
    aws: Aws, wavespeed: FakeWaveSpeed
) -> None:
    job = queued_job(aws)
    out = load_handler("submit").handler(submit_event(job), LambdaContext())
    stored = clients.job_store().get(job.id)
    assert stored.status is JobStatus.SUBMITTED and stored.prediction_id == out["prediction_id"]
    assert stored.task_token == event("submit")["task_token"]
    [sent] = wavespeed.submissions
    assert sent["prompt"] == "the square" and sent["apply_mask"] is False
    [request] = [r for r in wavespeed.requests if r.method == "POST"]
    token = stored.callback_token
    assert token and len(token) >= 32
    assert request.url.params["webhook"] == (
        f"http://127.0.0.1:3000/v1/callbacks/wavespeed?job={job.id}&token={token}"
    )


def test_a_first_submit_writes_its_token_with_the_intent_in_one_write(
    aws: Aws, wavespeed: FakeWaveSpeed
) -> None:
    job = queued_job(aws)
    writes: list[str] = []
    clients.dynamodb().meta.events.register(
        "before-parameter-build.dynamodb.UpdateItem",
        lambda params, **_: (
            writes.append(params["UpdateExpression"]) if params["Key"]["pk"]["S"] == f"JOB#{job.id}" else None
        ),
    )
    load_handler("submit").handler(submit_event(job), LambdaContext())
    intent, record = writes  # the intent (with the token), then the prediction; nothing before them
    assert "submit_attempt = :a" in intent and "task_token = :tt" in intent
    assert "prediction_id = :p" in record
    assert clients.job_store().get(job.id).task_token == event("submit")["task_token"]


def test_submit_retried_after_landing_does_not_submit_again(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    job = queued_job(aws)
    handler = load_handler("submit").handler
    first = handler(submit_event(job), LambdaContext())
    second = handler({**submit_event(job), "task_token": "a-fresh-token"}, LambdaContext())
    assert first["prediction_id"] == second["prediction_id"]
    assert len(wavespeed.submissions) == 1
    assert clients.job_store().get(job.id).task_token == "a-fresh-token"


def test_submit_rate_limited_raises_retryable(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    wavespeed.submit_status = 429
    with pytest.raises(UpstreamRateLimited):
        load_handler("submit").handler(submit_event(queued_job(aws)), LambdaContext())


def test_submit_job_failed_at_intake_raises_job_not_submittable(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    job = queued_job(aws, status=JobStatus.FAILED, error=JobError(type="invalid_image", message="no"))
    with pytest.raises(JobNotSubmittable):
        load_handler("submit").handler(submit_event(job), LambdaContext())
    assert wavespeed.submissions == []


def test_submit_rejected_records_the_failure_itself(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    """So a Submit that outlived its task's wait still ends the job with its real error."""
    wavespeed.submit_status = 400
    job = queued_job(aws)
    with pytest.raises(UpstreamRejected):
        load_handler("submit").handler(submit_event(job), LambdaContext())
    stored = clients.job_store().get(job.id)
    assert stored.status is JobStatus.FAILED and stored.error is not None
    assert stored.error.type == "upstream_rejected"
    load_handler("fail").handler({**event("fail"), "job_id": job.id}, LambdaContext())  # the Catch
    assert clients.job_store().get(job.id).error == stored.error


def test_submit_writes_no_intent_this_close_to_the_deadline(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    """Poll ends an unsubmitted job at the deadline from one read: a Submit slowed to the deadline
    must not start a prediction the failing job would throw away."""
    deadline = get_settings().job_deadline_seconds
    late = datetime.now(UTC) - timedelta(seconds=deadline - LAST_SUBMIT_SECONDS + 1)
    job = queued_job(aws, created_at=late, updated_at=late)
    with pytest.raises(PredictionTimedOut, match="not submitted before its deadline"):
        load_handler("submit").handler(submit_event(job), LambdaContext())
    stored = clients.job_store().get(job.id)
    assert wavespeed.submissions == [] and stored.submit_attempt is None
    assert clients.admission().in_flight() == {}  # its WaveSpeed slot is given back
