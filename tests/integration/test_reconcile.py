"""The reconcile function on moto: each repair, the dry run, and what it leaves alone. Every AWS call
it makes is checked against its role in template.yaml (tests/support/iam.py)."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from standardwebhooks import Webhook

from maskgate import clients
from maskgate.contracts.endpoints import EndpointCreate, EndpointUpdate
from maskgate.contracts.job import DeliveryAttempt, ImageLocation, Job, JobStatus
from maskgate.contracts.prompts import Prompts
from maskgate.ids import new_job_id
from maskgate.steps.reconcile import MAX_UNIT_RESTARTS
from maskgate.stores.admission import Admission
from maskgate.stores.job_index import JobIndex
from maskgate.stores.tenant_events import TenantEvent
from maskgate.webhooks.body import endpoint_disabled_body, webhook_id
from maskgate.webhooks.notifier import unit_name
from maskgate.workflow.executions import Executions
from tests.integration.conftest import REGION, Aws
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import Receiver

WEBHOOK = "http://127.0.0.1:8765/hooks"
SUCCEEDED = "segmentation.succeeded"


def reconcile(**fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = load_handler("reconcile").handler(
        {**event("reconcile"), **fields}, LambdaContext()
    )
    return result


def repairs(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((r["job_id"], r["kind"], r["action"]) for r in report["repairs"])


def put_job(
    status: JobStatus = JobStatus.SUBMITTED, *, age: timedelta = timedelta(minutes=5), **fields: Any
) -> Job:
    created = datetime.now(UTC) - age
    values: dict[str, Any] = {
        "id": new_job_id(created),
        "tenant": "default",
        "status": status,
        "source": "api",
        "request": Prompts(prompt="the cat", webhook_url=WEBHOOK),
        "image": ImageLocation(url="https://example.com/cat.png"),
        "created_at": created,
        "updated_at": created,
        **fields,
    }
    if status.terminal:
        values.setdefault("finished_at", created)
    job = Job(**values)
    assert clients.job_store().create(job)
    return job


def item(aws: Aws, job_id: str) -> dict[str, Any]:
    found = aws.client("dynamodb").get_item(TableName=aws.table, Key={"pk": {"S": f"JOB#{job_id}"}})
    return dict(found["Item"])


def machine(name: str) -> str:
    return f"arn:aws:states:{REGION}:123456789012:stateMachine:maskgate-{name}"


def execution(kind: str, name: str) -> dict[str, Any]:
    arn = machine(kind).replace(":stateMachine:", ":execution:") + f":{name}"
    return dict(boto3.client("stepfunctions", region_name=REGION).describe_execution(executionArn=arn))


def stop(kind: str, name: str) -> None:
    arn = machine(kind).replace(":stateMachine:", ":execution:") + f":{name}"
    boto3.client("stepfunctions", region_name=REGION).stop_execution(executionArn=arn)


def take_slot(aws: Aws, job_id: str, *, ago: float = 300) -> None:
    Admission(
        table=aws.table,
        client=aws.client("dynamodb"),
        concurrency=10,
        per_minute=0,
        stale_after_seconds=900,
        clock=lambda: time.time() - ago,
    ).admit(job_id, tenant=aws.tenant)


def started(job: Job) -> Job:
    """The job with its first execution started, as intake does."""
    assert clients.workflow().start(job.id, created_at=job.created_at)
    return job


# stalled jobs ----------------------------------------------------------------------------------


def test_reconcile_restarts_a_job_whose_execution_was_stopped_with_its_first_input(aws: Aws) -> None:
    job = started(put_job(submit_attempt="a1"))
    stop("segmentation", job.id)
    report = reconcile()
    assert repairs(report) == [(job.id, "stalled", "restart")]
    assert report["repairs"][0]["detail"] == f"{job.id}-r1" and report["counts"]["restarted"] == 1
    restarted = execution("segmentation", f"{job.id}-r1")
    assert restarted["status"] == "RUNNING"
    assert json.loads(restarted["input"]) == json.loads(execution("segmentation", job.id)["input"])
    assert item(aws, job.id)["execution"] == {"S": f"{job.id}-r1"}
    assert reconcile()["repairs"] == []  # its restart runs


def test_reconcile_restarts_again_under_the_next_name(aws: Aws) -> None:
    job = started(put_job())
    stop("segmentation", job.id)
    reconcile()
    stop("segmentation", f"{job.id}-r1")
    assert [r["detail"] for r in reconcile()["repairs"]] == [f"{job.id}-r2"]


def test_reconcile_starts_a_job_that_never_had_an_execution(aws: Aws) -> None:
    job = put_job(JobStatus.QUEUED)
    assert repairs(reconcile()) == [(job.id, "stalled", "restart")]
    assert aws.executions() == [f"{job.id}-r1"]


def test_reconcile_leaves_running_young_and_old_jobs_alone(aws: Aws) -> None:
    started(put_job())
    young = put_job(JobStatus.QUEUED, age=timedelta(seconds=30))
    put_job(JobStatus.QUEUED, age=timedelta(hours=3))  # outside the window: never read
    report = reconcile()
    assert (report["repairs"], report["checked"]) == ([], 1)  # the young job is past the bounds too
    assert repairs(reconcile(grace_seconds=0)) == [(young.id, "stalled", "restart")]


def test_reconcile_stops_its_restart_when_the_job_was_canceled_meanwhile(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = put_job()
    start = Executions.start

    def canceled_first(self: Executions, machine_arn: str, name: str, payload: str) -> bool:
        clients.job_store().transition(job.id, JobStatus.CANCELED)
        return start(self, machine_arn, name, payload)

    monkeypatch.setattr(Executions, "start", canceled_first)
    assert reconcile()["repairs"] == []
    assert execution("segmentation", f"{job.id}-r1")["status"] == "ABORTED"


def test_reconcile_fails_a_job_that_cannot_run_notifies_and_frees_its_slot(
    aws: Aws, receiver: Receiver
) -> None:
    job = put_job(JobStatus.QUEUED, image=None)
    take_slot(aws, job.id)
    assert repairs(reconcile()) == [(job.id, "stalled", "fail")]
    failed = clients.job_store().get(job.id)
    assert (failed.status, failed.error and failed.error.type) == (JobStatus.FAILED, "internal_error")
    [request] = receiver.requests
    assert json.loads(request.content)["type"] == "segmentation.failed"
    assert job.id not in clients.admission().in_flight() and aws.executions() == []


def test_reconcile_fails_a_job_never_submitted_by_its_deadline_as_timeout(
    aws: Aws, receiver: Receiver
) -> None:
    job = put_job(JobStatus.QUEUED, age=timedelta(minutes=16))
    assert repairs(reconcile()) == [(job.id, "stalled", "fail")]
    failed = clients.job_store().get(job.id)
    assert failed.error is not None and failed.error.type == "timeout"
    assert aws.executions() == [] and len(receiver.requests) == 1


def test_a_failing_repair_is_reported_and_the_sweep_goes_on(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    stalled_job, finished = put_job(), put_job(JobStatus.SUCCEEDED, request=Prompts(prompt="x"))
    take_slot(aws, finished.id)

    def broken(self: Executions, machine_arn: str, name: str, payload: str) -> bool:
        raise RuntimeError("throttled")

    monkeypatch.setattr(Executions, "start", broken)
    report = reconcile()
    assert repairs(report) == sorted([(stalled_job.id, "stalled", "error"), (finished.id, "slot", "release")])
    assert report["counts"]["errors"] == 1 and finished.id not in clients.admission().in_flight()


# uploads ---------------------------------------------------------------------------------------


def test_reconcile_expires_an_upload_whose_expiry_execution_is_gone(aws: Aws, receiver: Receiver) -> None:
    lost = put_job(JobStatus.AWAITING_UPLOAD, age=timedelta(minutes=19), source="upload")
    timed = put_job(JobStatus.AWAITING_UPLOAD, age=timedelta(minutes=19), source="upload")
    clients.upload_expiries().start(timed.id, seconds=960)  # still running: it fails the job itself
    assert repairs(reconcile()) == [(lost.id, "upload_expired", "expire")]
    expired = clients.job_store().get(lost.id)
    assert expired.error is not None and expired.error.type == "upload_expired"
    assert clients.job_store().get(timed.id).status is JobStatus.AWAITING_UPLOAD
    assert len(receiver.requests) == 1


# slots -----------------------------------------------------------------------------------------


def test_reconcile_releases_the_slots_of_finished_and_missing_jobs_only(aws: Aws) -> None:
    done = put_job(JobStatus.SUCCEEDED, request=Prompts(prompt="x"))
    live = started(put_job())
    gone = new_job_id(datetime.now(UTC))
    for job_id in (done.id, live.id, gone):
        take_slot(aws, job_id)
    report = reconcile()
    assert repairs(report) == sorted([(done.id, "slot", "release"), (gone, "slot", "release")])
    assert set(clients.admission().in_flight()) == {live.id}


# webhooks --------------------------------------------------------------------------------------


def test_reconcile_makes_the_first_attempt_a_killed_notify_left_pending(aws: Aws, receiver: Receiver) -> None:
    job = put_job(JobStatus.SUCCEEDED)
    msg_id = webhook_id(job.id, SUCCEEDED)
    clients.job_store().set_webhook_body(job.id, '{"type": "segmentation.succeeded"}', webhook_id=msg_id)
    assert repairs(reconcile()) == [(job.id, "webhook", "notify")]
    [request] = receiver.requests
    assert (request.headers["webhook-id"], request.content) == (msg_id, b'{"type": "segmentation.succeeded"}')
    after = clients.job_store().get(job.id)
    assert after.webhook_pending is None and [d.outcome for d in after.deliveries] == ["delivered"]


def test_reconcile_notifies_a_finished_job_whose_notify_never_ran(aws: Aws, receiver: Receiver) -> None:
    job = put_job(JobStatus.FAILED)
    assert repairs(reconcile()) == [(job.id, "webhook", "notify")]
    [request] = receiver.requests
    assert request.headers["webhook-id"] == webhook_id(job.id, "segmentation.failed")
    assert reconcile()["repairs"] == []  # delivered and recorded


def _retried(
    job: Job, *, ago: timedelta, endpoint_id: str | None = None, wait: timedelta = timedelta(seconds=300)
) -> str:
    """Two attempts of the job's succeeded webhook that said "retrying", ``ago``, the next one due
    ``wait`` later; the webhook-id."""
    msg_id = webhook_id(job.id, SUCCEEDED)
    at = datetime.now(UTC) - ago
    for number in (1, 2):
        clients.job_store().record_delivery(
            job.id,
            DeliveryAttempt(
                webhook_id=msg_id,
                event=SUCCEEDED,
                attempt=number,
                at=at,
                url=WEBHOOK if endpoint_id is None else "http://127.0.0.1:8765/endpoint",
                endpoint_id=endpoint_id,
                outcome="retrying",
                next_attempt_at=at + wait,
            ),
        )
    return msg_id


def test_reconcile_starts_a_unit_for_a_retry_whose_unit_stopped(aws: Aws) -> None:
    job = put_job(JobStatus.SUCCEEDED, webhook_body="{}")
    msg_id = _retried(job, ago=timedelta(minutes=4), wait=timedelta(seconds=5))
    clients.delivery_units().start(name=msg_id, job_id=job.id, event=SUCCEEDED, step=0, wait_seconds=5)
    stop("webhook-delivery", msg_id)
    assert [r["detail"] for r in reconcile()["repairs"]] == [f"{msg_id}-s1"]
    unit = execution("webhook-delivery", f"{msg_id}-s1")
    assert json.loads(unit["input"]) == {
        "job_id": job.id,
        "message_id": None,
        "event": SUCCEEDED,
        "step": 1,  # one retry made: the unit carries on with the schedule
        "endpoint_id": None,
        "wait_seconds": 0,
        "done": False,
    }
    assert item(aws, job.id)["delivery_unit"] == {"S": f"{msg_id}-s1"}
    assert reconcile()["repairs"] == []  # its unit runs


def _own_webhook_delivered(job: Job) -> None:
    clients.job_store().record_delivery(
        job.id,
        DeliveryAttempt(
            webhook_id=webhook_id(job.id, SUCCEEDED),
            event=SUCCEEDED,
            attempt=1,
            at=datetime.now(UTC) - timedelta(minutes=4),
            url=WEBHOOK,
            outcome="delivered",
        ),
    )


def _stopped_endpoint_delivery(job: Job, endpoint_id: str) -> str:
    """Two retrying attempts to the endpoint, long overdue, whose unit stopped; the webhook-id."""
    return _retried(job, ago=timedelta(minutes=4), endpoint_id=endpoint_id, wait=timedelta(seconds=5))


def test_reconcile_starts_a_unit_for_an_endpoint_whose_delivery_stopped(aws: Aws, receiver: Receiver) -> None:
    endpoint = clients.endpoint_store().create(
        aws.tenant, EndpointCreate(url="http://127.0.0.1:8765/endpoint")
    )
    job = put_job(JobStatus.SUCCEEDED, webhook_body="{}")
    _own_webhook_delivered(job)
    msg_id = _stopped_endpoint_delivery(job, endpoint.id)
    name = f"{msg_id}_{endpoint.id}-s1"
    assert [(r["kind"], r["action"], r["detail"]) for r in reconcile()["repairs"]] == [
        ("webhook", "start_unit", name)
    ]
    unit = json.loads(execution("webhook-delivery", name)["input"])
    assert (unit["endpoint_id"], unit["step"], unit["wait_seconds"]) == (endpoint.id, 1, 0)
    stop("webhook-delivery", name)
    assert [r["detail"] for r in reconcile()["repairs"]] == [f"{msg_id}_{endpoint.id}-s2"]


def test_reconcile_leaves_an_endpoint_that_was_disabled(aws: Aws, receiver: Receiver) -> None:
    endpoint = clients.endpoint_store().create(
        aws.tenant, EndpointCreate(url="http://127.0.0.1:8765/endpoint")
    )
    job = put_job(JobStatus.SUCCEEDED, webhook_body="{}")
    _own_webhook_delivered(job)
    _stopped_endpoint_delivery(job, endpoint.id)
    clients.endpoint_store().disable(aws.tenant, endpoint.id, reason="the endpoint answered 410 Gone")
    assert reconcile()["repairs"] == []


def _retried_to_both(aws: Aws, *, age: timedelta, ago: timedelta) -> tuple[Job, Any, str]:
    """A finished job ``age`` old whose own webhook and one endpoint's were retried ``ago``, long
    overdue since: the job, the endpoint and the webhook-id."""
    endpoint = endpoint_of(aws)
    job = put_job(JobStatus.SUCCEEDED, age=age, webhook_body="{}")
    msg_id = _retried(job, ago=ago)
    _retried(job, ago=ago, endpoint_id=endpoint.id)
    return job, endpoint, msg_id


def test_retries_that_stopped_after_the_jobs_window_are_found_by_their_mark(
    aws: Aws, receiver: Receiver
) -> None:
    # created and finished 20 hours ago, far outside the window of jobs read by their creation day
    # (the deadline, two intervals and a margin: under an hour); retried until 3 hours ago
    job, endpoint, msg_id = _retried_to_both(aws, age=timedelta(hours=20), ago=timedelta(hours=3))
    mark = aws.client("dynamodb").get_item(TableName=aws.table, Key={"pk": {"S": f"RETRYING#{job.id}"}})
    last = clients.job_store().get(job.id).deliveries[-1].at
    assert mark["Item"]["created_day"]["S"] == f"retrying#{last.date().isoformat()}"  # as of the last retry
    assert mark["Item"]["created_at"]["S"] == last.isoformat().replace("+00:00", "Z")
    report = reconcile()
    assert report["checked"] == 1
    assert sorted((r["job_id"], r["action"], r["detail"]) for r in report["repairs"]) == sorted(
        [(job.id, "start_unit", f"{msg_id}-s1"), (job.id, "start_unit", f"{msg_id}_{endpoint.id}-s1")]
    )
    assert json.loads(execution("webhook-delivery", f"{msg_id}-s1")["input"])["step"] == 1  # one retry made


def test_a_job_last_retried_longer_ago_than_any_next_wait_and_a_day_is_not_read(aws: Aws) -> None:
    job = put_job(JobStatus.SUCCEEDED, age=timedelta(days=4), webhook_body="{}")
    _retried(job, ago=timedelta(days=3))  # the schedule's longest next wait is Retry-After's cap, 6 h
    report = reconcile()
    assert (report["checked"], report["repairs"]) == (0, [])


def test_a_failing_listing_of_marked_jobs_is_reported_and_the_window_is_repaired(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    stalled_job = put_job()

    def broken(self: JobIndex, days: object, bounds: object) -> list[str]:
        raise RuntimeError("throttled")

    monkeypatch.setattr(JobIndex, "retrying", broken)
    report = reconcile()
    assert [(r["kind"], r["action"]) for r in report["repairs"] if r["job_id"] is None] == [
        ("webhook", "error")
    ]
    assert (stalled_job.id, "stalled", "restart") in [
        (r["job_id"], r["kind"], r["action"]) for r in report["repairs"]
    ]


def test_a_jobs_retries_stopping_inside_its_window_are_found_once(aws: Aws) -> None:
    job = put_job(JobStatus.SUCCEEDED, age=timedelta(minutes=15), webhook_body="{}")  # in the window
    msg_id = _retried(job, ago=timedelta(minutes=10))  # and marked
    report = reconcile()
    assert (report["checked"], [r["detail"] for r in report["repairs"]]) == (1, [f"{msg_id}-s1"])


def test_reconcile_leaves_a_delivery_whose_unit_runs(aws: Aws, receiver: Receiver) -> None:
    job = put_job(JobStatus.CANCELED)
    msg_id = webhook_id(job.id, "segmentation.canceled")
    clients.job_store().set_webhook_body(job.id, "{}", webhook_id=msg_id)
    clients.delivery_units().start(
        name=msg_id, job_id=job.id, event="segmentation.canceled", step=0, wait_seconds=0
    )
    assert reconcile()["repairs"] == [] and receiver.requests == []


def test_reconcile_leaves_a_stopped_delivery_whose_redelivery_or_recovery_unit_runs(
    aws: Aws, receiver: Receiver
) -> None:
    job, endpoint, msg_id = _retried_to_both(aws, age=timedelta(minutes=15), ago=timedelta(minutes=10))
    # a redelivery's unit for the job's own webhook, a recovery's for the endpoint: names the sweep
    # does not make, running under any number
    units = clients.delivery_units()
    units.start(name=f"{msg_id}-r7", job_id=job.id, event=SUCCEEDED, step=0, wait_seconds=0)
    units.start(
        name=f"{unit_name(msg_id, endpoint.id)}-x0a1b2c",
        job_id=job.id,
        event=SUCCEEDED,
        step=0,
        wait_seconds=0,
        endpoint_id=endpoint.id,
    )
    assert reconcile()["repairs"] == []
    stop("webhook-delivery", f"{msg_id}-r7")  # the endpoint's unit still runs
    assert [r["detail"] for r in reconcile()["repairs"]] == [f"{msg_id}-s1"]


def test_when_the_running_units_cannot_be_listed_no_unit_is_started_and_the_sweep_goes_on(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit of a name the sweep does not know (a redelivery's, a recovery's) might run: none is
    started beside it; the next sweep tries again."""
    job = put_job(JobStatus.SUCCEEDED, age=timedelta(minutes=15), webhook_body="{}")
    _retried(job, ago=timedelta(minutes=10))
    stalled_job = put_job()
    listing = Executions.running

    def throttled(self: Executions, machine: str) -> frozenset[str]:
        if machine.endswith(":maskgate-webhook-delivery"):
            raise RuntimeError("throttled")
        return listing(self, machine)

    monkeypatch.setattr(Executions, "running", throttled)
    report = reconcile()
    assert repairs(report) == sorted([(job.id, "webhook", "error"), (stalled_job.id, "stalled", "restart")])
    assert aws.delivery_units() == []


def test_a_delivery_that_stopped_after_each_of_its_restarts_is_dead_lettered_once(aws: Aws) -> None:
    """The sweep's units for the job's own webhook and for an endpoint each stopped (their Deliver
    dying every time): after MAX_UNIT_RESTARTS, each goes to the dead-letter queue with its resend
    route, its end is recorded, and no later sweep takes it up."""
    job, endpoint, msg_id = _retried_to_both(aws, age=timedelta(minutes=15), ago=timedelta(minutes=10))
    own, theirs = msg_id, unit_name(msg_id, endpoint.id)
    for n in range(1, MAX_UNIT_RESTARTS + 1):
        assert sorted(r["detail"] for r in reconcile()["repairs"]) == sorted(
            [f"{own}-s{n}", f"{theirs}-s{n}"]
        )
        stop("webhook-delivery", f"{own}-s{n}")
        stop("webhook-delivery", f"{theirs}-s{n}")
    planned = reconcile(dry_run=True)
    assert sorted((r["action"], r["detail"]) for r in planned["repairs"]) == sorted(
        [
            ("dead_letter", f"{own}: stopped after 5 restarts"),
            ("dead_letter", f"{theirs}: stopped after 5 restarts"),
        ]
    )
    report = reconcile()
    assert report["counts"]["webhooks_dead_lettered"] == 2
    letters = sorted(aws.dead_letters(), key=lambda m: m["endpoint_id"] or "")
    assert [(m["webhook_id"], m["endpoint_id"], m["redeliver"]) for m in letters] == [
        (msg_id, None, f"POST /v1/segmentations/{job.id}/deliveries"),
        (msg_id, endpoint.id, f"POST /v1/segmentations/{job.id}/deliveries"),
    ]
    ends = [d for d in clients.job_store().get(job.id).deliveries if d.outcome == "dead_lettered"]
    assert sorted(d.endpoint_id or "" for d in ends) == ["", endpoint.id]
    assert reconcile()["repairs"] == [] and aws.dead_letters() == []  # given up once


# the dry run -----------------------------------------------------------------------------------


def test_reconcile_dry_run_reports_and_repairs_nothing(aws: Aws, receiver: Receiver) -> None:
    stalled_job = put_job(JobStatus.QUEUED)
    pending = put_job(JobStatus.SUCCEEDED)
    clients.job_store().set_webhook_body(pending.id, "{}", webhook_id=webhook_id(pending.id, SUCCEEDED))
    gone = new_job_id(datetime.now(UTC))
    take_slot(aws, gone)
    before = {job_id: item(aws, job_id) for job_id in (stalled_job.id, pending.id)}
    report = reconcile(dry_run=True)
    assert report["dry_run"] is True and report["counts"]["found"] == 3
    assert repairs(report) == sorted(
        [(stalled_job.id, "stalled", "restart"), (pending.id, "webhook", "notify"), (gone, "slot", "release")]
    )
    assert aws.executions() == [] and receiver.requests == [] and gone in clients.admission().in_flight()
    assert {job_id: item(aws, job_id) for job_id in before} == before


# tenant events (about no job) ------------------------------------------------------------------

DISABLED = "endpoint.disabled"
THRESHOLD = "tenant.spend_threshold"
GONE = "ep_0123456789abcdef"  # the disabled endpoint the kept endpoint.disabled notices are about


def endpoint_of(aws: Aws, **fields: Any) -> Any:
    return clients.endpoint_store().create(
        aws.tenant, EndpointCreate(url="http://127.0.0.1:8765/endpoint", **fields)
    )


def kept_event(
    aws: Aws, told: list[Any], *, kind: str = DISABLED, ago: timedelta = timedelta(minutes=4)
) -> TenantEvent:
    """An event kept ``ago``, sent to the ``told`` endpoints (its telling's units stopped or never ran)."""
    data = {"endpoint_id": GONE} if kind == DISABLED else {"tenant": aws.tenant}
    notice = TenantEvent(
        webhook_id=f"msg_{GONE}_disabled_1" if kind == DISABLED else "msg_spend_threshold_2026-12_0a1b",
        tenant=aws.tenant,
        type=kind,
        body=json.dumps({"type": kind, "data": data}),
    )
    clients.notifier().events.keep(notice, at=datetime.now(UTC) - ago, told=[e.id for e in told])
    return notice


def logged(notice: TenantEvent, endpoint_id: str, *numbers: int, outcome: str = "retrying") -> None:
    """Attempts of the notice to the endpoint with these numbers, the last ``outcome``, long overdue."""
    long_ago = datetime.now(UTC) - timedelta(minutes=4)
    for number in numbers:
        last = number == numbers[-1]
        attempt = DeliveryAttempt(
            webhook_id=notice.webhook_id,
            event=notice.type,
            attempt=number,
            at=long_ago,
            url="http://127.0.0.1:8765/endpoint",
            endpoint_id=endpoint_id,
            outcome=outcome if last else "retrying",
            status_code=200 if last and outcome == "delivered" else 503,
            next_attempt_at=long_ago + timedelta(seconds=5) if not last or outcome == "retrying" else None,
        )
        clients.notifier().log.record(attempt, job_id=None)


def stopped_unit(notice: TenantEvent, endpoint_id: str, name: str | None = None) -> str:
    name = name or unit_name(notice.webhook_id, endpoint_id)
    clients.delivery_units().start(
        name=name,
        message_id=notice.webhook_id,
        event=notice.type,
        step=0,
        wait_seconds=30,
        endpoint_id=endpoint_id,
    )
    stop("webhook-delivery", name)
    return name


def event_repairs(report: dict[str, Any]) -> list[tuple[str | None, str, str, str]]:
    return [(r["message_id"], r["kind"], r["action"], r["detail"]) for r in report["repairs"]]


def test_reconcile_starts_a_unit_for_a_tenant_event_whose_retries_stopped(aws: Aws) -> None:
    endpoint = endpoint_of(aws)
    notice = kept_event(aws, [endpoint])
    logged(notice, endpoint.id, 1, 2)
    base = stopped_unit(notice, endpoint.id)
    report = reconcile()
    assert event_repairs(report) == [(notice.webhook_id, "webhook", "start_unit", f"{base}-s1")]
    assert report["repairs"][0]["job_id"] is None and report["counts"]["webhooks_recovered"] == 1
    assert json.loads(execution("webhook-delivery", f"{base}-s1")["input"]) == {
        "job_id": None,
        "message_id": notice.webhook_id,
        "event": DISABLED,
        "step": 1,  # one retry made: the unit carries on with the schedule
        "endpoint_id": endpoint.id,
        "wait_seconds": 0,
        "done": False,
    }
    assert reconcile()["repairs"] == []  # its unit runs
    stop("webhook-delivery", f"{base}-s1")
    assert event_repairs(reconcile()) == [(notice.webhook_id, "webhook", "start_unit", f"{base}-s2")]


def test_a_repair_carries_on_from_the_last_attempts_number_when_numbers_skip(aws: Aws) -> None:
    """A unit numbers its attempt after the retries before it: a throttled first attempt's unit logs
    attempt 2 first. The next unit carries on from 2, not from the start of the schedule."""
    endpoint = endpoint_of(aws)
    notice = kept_event(aws, [endpoint], kind=THRESHOLD)
    logged(notice, endpoint.id, 2, 3)
    base = stopped_unit(notice, endpoint.id)
    assert event_repairs(reconcile()) == [(notice.webhook_id, "webhook", "start_unit", f"{base}-s1")]
    assert json.loads(execution("webhook-delivery", f"{base}-s1")["input"])["step"] == 2


def test_a_threshold_notice_never_attempted_gets_the_unit_its_telling_would_have_started(aws: Aws) -> None:
    endpoint = endpoint_of(aws)
    notice = kept_event(aws, [endpoint], kind=THRESHOLD)
    base = unit_name(notice.webhook_id, endpoint.id)
    assert event_repairs(reconcile()) == [(notice.webhook_id, "webhook", "start_unit", base)]
    assert json.loads(execution("webhook-delivery", base)["input"])["step"] == 0


def test_an_endpoint_disabled_notice_whose_telling_died_is_told_again_and_marked_sent(
    aws: Aws, receiver: Receiver
) -> None:
    """As the next read of the tenant's targets would: the same bytes and webhook-id to every other
    endpoint, no second unit of the sweep's own, and the notice marked sent (so no third telling)."""
    other = endpoint_of(aws, event_types=[DISABLED])
    failing = endpoint_of(aws)
    # disabled, its notice kept and sent to ``other``... and the telling died before it was marked sent
    clients.endpoint_store().disable(aws.tenant, failing.id, reason="every delivery failed")
    gone = next(e for e in clients.endpoint_store().list(aws.tenant) if e.id == failing.id)
    assert gone.disabled_notice_pending
    body, msg_id = endpoint_disabled_body(gone, now=datetime.now(UTC))
    notice = TenantEvent(webhook_id=msg_id, tenant=aws.tenant, type=DISABLED, body=body)
    clients.notifier().events.keep(notice, at=datetime.now(UTC) - timedelta(minutes=4), told=[other.id])
    report = reconcile()
    assert event_repairs(report) == [(msg_id, "webhook", "notify", f"{failing.id} disabled")]
    [sent] = receiver.requests
    assert sent.headers["webhook-id"] == msg_id and sent.content == body.encode()
    Webhook(other.secret).verify(sent.content, dict(sent.headers))
    assert not next(
        e for e in clients.endpoint_store().list(aws.tenant) if e.id == failing.id
    ).disabled_notice_pending
    assert reconcile()["repairs"] == []


def test_of_a_tenant_events_endpoints_only_the_told_ones_that_still_take_it_are_repaired(aws: Aws) -> None:
    """Left alone: an endpoint the event was delivered to, one disabled since, one whose filter does not
    take it, one it was never sent to (registered after it, or re-enabled since: the subject of an
    endpoint.disabled is never told of itself); and a young event (the grace period)."""
    delivered, aborted, other_type, disabled = (
        endpoint_of(aws),
        endpoint_of(aws),
        endpoint_of(aws),
        endpoint_of(aws),
    )
    notice = kept_event(aws, [delivered, aborted, other_type, disabled])
    endpoint_of(aws)  # never told
    logged(notice, delivered.id, 1, 2, outcome="delivered")
    logged(notice, disabled.id, 1)
    clients.endpoint_store().disable(aws.tenant, disabled.id, reason="the endpoint answered 410 Gone")
    clients.endpoint_store().update(
        aws.tenant, other_type.id, EndpointUpdate(event_types=["segmentation.failed"])
    )
    base = stopped_unit(notice, aborted.id)  # told, never attempted, its unit aborted before its attempt
    assert event_repairs(reconcile()) == [(notice.webhook_id, "webhook", "start_unit", f"{base}-s1")]
    young = TenantEvent(webhook_id="msg_young", tenant=aws.tenant, type=THRESHOLD, body="{}")
    clients.notifier().events.keep(young, at=datetime.now(UTC), told=[delivered.id])
    assert reconcile(grace_seconds=60)["repairs"] == []  # the aborted one's new unit runs; the young waits


def test_a_tenant_event_that_cannot_be_read_is_reported_and_the_sweep_goes_on(aws: Aws) -> None:
    endpoint = endpoint_of(aws)
    broken = TenantEvent(
        webhook_id=f"msg_{GONE}_disabled_2", tenant=aws.tenant, type=DISABLED, body="not json"
    )
    clients.notifier().events.keep(broken, at=datetime.now(UTC) - timedelta(minutes=4), told=[endpoint.id])
    notice = kept_event(aws, [endpoint], kind=THRESHOLD)
    gone = new_job_id(datetime.now(UTC))
    take_slot(aws, gone)
    report = reconcile()
    found = {(r["message_id"] or r["job_id"], r["action"]) for r in report["repairs"]}
    assert found == {(broken.webhook_id, "error"), (notice.webhook_id, "start_unit"), (gone, "release")}


def test_reconcile_dry_run_reports_a_tenant_event_and_starts_nothing(aws: Aws) -> None:
    endpoint = endpoint_of(aws)
    notice = kept_event(aws, [endpoint], kind=THRESHOLD)
    report = reconcile(dry_run=True)
    base = unit_name(notice.webhook_id, endpoint.id)
    assert event_repairs(report) == [(notice.webhook_id, "webhook", "start_unit", base)]
    assert aws.executions() == []


# the command against a deployed stack ----------------------------------------------------------


def test_the_command_finds_a_deployed_stacks_function_by_its_output(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from maskgate_local.cli import reconcile as reconcile_command

    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"ReconcileFunctionName": {"Value": "mg-prod-ReconcileFunction-AbC123"}},
    }
    aws.client("cloudformation").create_stack(StackName="mg-prod", TemplateBody=json.dumps(template))
    invoked: list[str] = []

    def invoke(target: reconcile_command.Target, request: dict[str, Any]) -> dict[str, Any]:
        invoked.append(target.function_name)
        return reconcile(**request)  # the real handler, on this moto

    monkeypatch.setattr(reconcile_command, "_invoke", invoke)
    parser = argparse.ArgumentParser(prog="maskgate")
    reconcile_command.add_reconcile_command(parser.add_subparsers())
    args = parser.parse_args(["reconcile", "--stack", "mg-prod", "--dry-run"])
    assert args.run(args) == 0
    assert invoked == ["mg-prod-ReconcileFunction-AbC123"]
    assert capsys.readouterr().out.startswith("maskgate reconcile --dry-run: checked 0 jobs, found 0")
