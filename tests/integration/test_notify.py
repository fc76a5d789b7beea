"""The notify step on moto: the first signed attempt of a finished job's webhook, and its delivery unit."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from maskgate import clients
from maskgate.contracts.job import JobError, JobStatus
from maskgate.contracts.prompts import Prompts
from tests.integration.conftest import Aws
from tests.integration.seeds import queued_job
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import Receiver


def test_notify_sample_event_delivers_a_verifiable_webhook(aws: Aws, receiver: Receiver) -> None:
    job = queued_job(aws, status=JobStatus.FAILED, error=JobError(type="timeout", message="slow"))
    out = load_handler("notify").handler({**event("notify"), "job_id": job.id}, LambdaContext())
    assert out["outcome"] == "delivered"
    [request] = receiver.requests
    payload = Webhook(aws.secret).verify(request.content, dict(request.headers))
    assert payload["type"] == "segmentation.failed"
    assert payload["data"]["error"] == {"type": "timeout", "message": "slow"}
    assert payload["data"]["metadata"] == {"order": "7"}
    [attempt] = clients.job_store().get(job.id).deliveries
    assert (attempt.outcome, attempt.status_code) == ("delivered", 204)


def test_notify_failed_first_attempt_starts_the_delivery_unit_named_after_the_webhook_id(
    aws: Aws, receiver: Receiver
) -> None:
    job = queued_job(aws, status=JobStatus.SUCCEEDED)
    receiver.status = 503
    out = load_handler("notify").handler({"job_id": job.id}, LambdaContext())
    assert out["outcome"] == "scheduled"
    [unit] = aws.delivery_units()
    assert unit["name"] == receiver.requests[0].headers["webhook-id"]
    assert (unit["job_id"], unit["event"], unit["step"], unit["done"]) == (
        job.id,
        "segmentation.succeeded",
        0,
        False,
    )
    assert 4 <= unit["wait_seconds"] <= 6  # 5 s ± 10 %
    [attempt] = clients.job_store().get(job.id).deliveries
    assert attempt.outcome == "retrying" and attempt.next_attempt_at is not None


def test_notify_honours_retry_after_on_429(
    aws: Aws, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = queued_job(aws, status=JobStatus.SUCCEEDED)
    receiver.status = 429
    receiver.headers = {"retry-after": "120"}
    load_handler("notify").handler({"job_id": job.id}, LambdaContext())
    [unit] = aws.delivery_units()
    assert unit["wait_seconds"] == 120
    assert clients.job_store().get(job.id).deliveries[0].retry_after == 120


def test_notify_receiver_4xx_gives_up_without_raising(aws: Aws, receiver: Receiver) -> None:
    receiver.status = 410
    job = queued_job(aws, status=JobStatus.SUCCEEDED)
    assert load_handler("notify").handler({"job_id": job.id}, LambdaContext())["outcome"] == "gave_up"


def test_notify_without_webhook_url_sends_nothing(aws: Aws, receiver: Receiver) -> None:
    job = queued_job(aws, status=JobStatus.SUCCEEDED, request=Prompts(prompt="the square"), webhook_url=None)
    assert load_handler("notify").handler({"job_id": job.id}, LambdaContext())["outcome"] == "no_webhook"
    assert receiver.requests == []
