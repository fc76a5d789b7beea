"""The deliver step on moto: a delivery unit's scheduled retries, up to the dead-letter queue."""

from __future__ import annotations

from typing import Any

from maskgate import clients
from maskgate.contracts.job import Job, JobStatus
from tests.integration.conftest import Aws
from tests.integration.seeds import queued_job
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import Receiver


def deliver_event(job: Job, step: int) -> dict[str, Any]:
    return {**event("deliver"), "job_id": job.id, "step": step}


def failed_once(aws: Aws, receiver: Receiver) -> Job:
    job = queued_job(aws, status=JobStatus.SUCCEEDED)
    receiver.status = 503
    load_handler("notify").handler({"job_id": job.id}, LambdaContext())
    return job


def test_deliver_retry_sends_the_same_id_and_body(aws: Aws, receiver: Receiver) -> None:
    job = failed_once(aws, receiver)
    receiver.status = 200
    out = load_handler("deliver").handler(deliver_event(job, 0), LambdaContext())
    assert out["done"] is True
    first, second = receiver.requests
    assert first.content == second.content
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    outcomes = [(d.attempt, d.outcome) for d in clients.job_store().get(job.id).deliveries]
    assert outcomes == [(1, "retrying"), (2, "delivered")]


def test_deliver_failure_returns_the_next_wait_on_the_schedule(aws: Aws, receiver: Receiver) -> None:
    job = failed_once(aws, receiver)
    out = load_handler("deliver").handler(deliver_event(job, 0), LambdaContext())
    assert (out["done"], out["step"]) == (False, 1)
    assert 270 <= out["wait_seconds"] <= 330  # the schedule's 300 s ± 10 %


def test_deliver_exhausted_goes_to_the_dead_letter_queue(aws: Aws, receiver: Receiver) -> None:
    job = failed_once(aws, receiver)
    out = load_handler("deliver").handler(deliver_event(job, 2), LambdaContext())
    assert out["done"] is True
    [letter] = aws.dead_letters()
    assert (letter["job_id"], letter["event"]) == (job.id, "segmentation.succeeded")
    assert letter["webhook_id"] == receiver.requests[0].headers["webhook-id"]
    assert clients.job_store().get(job.id).deliveries[-1].outcome == "dead_lettered"


def test_deliver_refused_4xx_stops(aws: Aws, receiver: Receiver) -> None:
    job = failed_once(aws, receiver)
    receiver.status = 410
    assert load_handler("deliver").handler(deliver_event(job, 0), LambdaContext())["done"] is True
    assert aws.dead_letters() == []
