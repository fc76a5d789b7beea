"""Tenant limits on moto: quotas, the monthly spend cap with its reservations, the threshold notice,
usage and dry runs, through the real handlers."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook

from maskgate import clients
from maskgate.contracts.endpoints import EndpointCreate
from maskgate.contracts.job import ImageLocation, Job, JobStatus
from maskgate.contracts.limits import month_of
from maskgate.contracts.prompts import Prompts
from maskgate.contracts.steps import ReconcileInput
from maskgate.errors import QuotaDeferred, QuotaExceeded, SpendCapReached
from maskgate.ids import new_job_id
from maskgate.steps.limits import threshold_webhook_id
from maskgate.stores.jobs import JobStore
from maskgate.stores.spend import SpendLedger
from maskgate.webhooks.notifier import Notifier, unit_name
from tests.integration.conftest import Aws, problem
from tests.integration.seeds import queued_job
from tests.integration.test_api import create_event
from tests.integration.test_on_upload import put_upload
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import FakeWaveSpeed, Receiver, image_bytes

PRICE = 5_000  # micro-dollars: sam3-image's $0.005


def unsaved_job(aws: Aws, at: datetime | None = None) -> Job:
    """A queued API job of the tenant (its image in the bucket), not written yet."""
    at = at or datetime.now(UTC)
    job_id = new_job_id(at)
    key = f"inputs/{job_id}/image.png"
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=image_bytes())
    return Job(
        id=job_id,
        tenant=aws.tenant,
        status=JobStatus.QUEUED,
        source="api",
        request=Prompts(prompt="the square"),
        image=ImageLocation(bucket=aws.bucket, key=key, width=64, height=48),
        created_at=at,
        updated_at=at,
    )


def set_limits(aws: Aws, **changes: Any) -> None:
    clients.gate().limits.set(aws.tenant, changes)


def counters(aws: Aws) -> dict[str, Any]:
    return clients.gate().ledger.counters(aws.tenant, month_of(datetime.now(UTC)))


def with_query(sample: dict[str, Any], query: str) -> dict[str, Any]:
    sample["rawQueryString"] = query
    sample["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    return sample


def usage_event(aws: Aws, query: str = "") -> dict[str, Any]:
    sample = event("api_get_segmentation")
    sample["headers"]["authorization"] = f"Bearer {aws.api_key}"
    sample.update(rawPath="/v1/usage", routeKey="GET /v1/usage", pathParameters={})
    sample["requestContext"]["http"]["path"] = "/v1/usage"
    return with_query(sample, query) if query else sample


@pytest.mark.usefixtures("atomic_dynamodb")
def test_fifty_concurrent_creates_at_a_cap_of_ten_jobs_make_exactly_ten(aws: Aws) -> None:
    set_limits(aws, monthly_spend_cap_usd=0.05)  # ten jobs at $0.005
    gate, jobs = clients.gate(), clients.job_store()
    seeds = [unsaved_job(aws) for _ in range(50)]

    def create(job: Any) -> str:
        try:
            return "created" if gate.create(job, jobs) else "existed"
        except SpendCapReached:
            return "refused"

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(create, seeds))
    assert (outcomes.count("created"), outcomes.count("refused")) == (10, 40)
    found = counters(aws)
    assert (found["committed"], found["reserved"], found["accepted"]) == (10 * PRICE, 10 * PRICE, 10)
    assert found["cap_rejections"] == 40
    stored = [jobs.get(job.id) for job, outcome in zip(seeds, outcomes, strict=True) if outcome == "created"]
    assert {(j.charge, j.price_micros) for j in stored} == {("reserved", PRICE)}


def test_api_over_the_cap_is_402_with_the_cap_and_the_months_spend(api: Any, aws: Aws) -> None:
    set_limits(aws, monthly_spend_cap_usd=0.005)
    assert api.handler(create_event(aws), LambdaContext())["statusCode"] == 202
    refused = api.handler(create_event(aws), LambdaContext())
    assert refused["statusCode"] == 402
    body = problem(refused)
    assert body["type"] == "spend_cap_reached"
    assert (body["cap_usd"], body["month_spend_usd"], body["month"]) == (
        0.005,
        0.005,
        month_of(datetime.now(UTC)),
    )
    assert len(aws.executions()) == 1  # the refused request created nothing


def test_api_over_jobs_per_minute_is_429_quota_exceeded_with_retry_after(api: Any, aws: Aws) -> None:
    set_limits(aws, jobs_per_minute=2)
    for _ in range(2):
        assert api.handler(create_event(aws), LambdaContext())["statusCode"] == 202
    refused = api.handler(create_event(aws), LambdaContext())
    assert refused["statusCode"] == 429
    assert problem(refused)["type"] == "quota_exceeded"
    assert 1 <= int(refused["headers"]["retry-after"]) <= 61
    found = counters(aws)
    assert (found["accepted"], found["quota_rejections"], found["committed"]) == (2, 1, 2 * PRICE)


def test_jobs_in_flight_free_their_place_when_they_end(api: Any, aws: Aws) -> None:
    set_limits(aws, max_jobs_in_flight=1)
    first = json.loads(api.handler(create_event(aws), LambdaContext())["body"])
    assert api.handler(create_event(aws), LambdaContext())["statusCode"] == 429
    clients.job_store().transition(first["id"], JobStatus.CANCELED)  # any end gives the place back
    assert api.handler(create_event(aws), LambdaContext())["statusCode"] == 202
    assert counters(aws)["released"] == 1


def test_dry_run_answers_the_price_and_creates_nothing(api: Any, aws: Aws) -> None:
    set_limits(aws, monthly_spend_cap_usd=1)
    answer = api.handler(with_query(create_event(aws), "dry_run=true"), LambdaContext())
    assert answer["statusCode"] == 200
    preview = json.loads(answer["body"])
    assert (preview["price_usd"], preview["would_run"], preview["refused_by"]) == (0.005, True, None)
    assert (preview["cap_usd"], preview["remaining_usd"]) == (1.0, 1.0)
    assert aws.executions() == [] and counters(aws)["accepted"] == 0


def test_dry_run_says_what_would_refuse_the_request(api: Any, aws: Aws) -> None:
    set_limits(aws, monthly_spend_cap_usd=0.005)
    assert api.handler(create_event(aws), LambdaContext())["statusCode"] == 202
    preview = json.loads(api.handler(with_query(create_event(aws), "dry_run=true"), LambdaContext())["body"])
    assert (preview["would_run"], preview["refused_by"]) == (False, "spend_cap_reached")
    set_limits(aws, monthly_spend_cap_usd=None, jobs_per_minute=1)
    assert api.handler(create_event(aws), LambdaContext())["statusCode"] == 202  # the minute's one job
    preview = json.loads(api.handler(with_query(create_event(aws), "dry_run=true"), LambdaContext())["body"])
    assert (preview["would_run"], preview["refused_by"]) == (False, "quota_exceeded")
    assert preview["retry_after"] >= 1


def test_dry_run_validates_the_request_as_a_create_does(api: Any, aws: Aws) -> None:
    body = json.loads(create_event(aws)["body"])
    del body["box_prompts"]
    answer = api.handler(with_query(create_event(aws, body), "dry_run=true"), LambdaContext())
    assert answer["statusCode"] == 422 and problem(answer)["type"] == "missing_prompt"


def test_a_price_is_spent_at_submit_and_released_by_an_end_before_it(
    api: Any, aws: Aws, wavespeed: FakeWaveSpeed
) -> None:
    set_limits(aws, monthly_spend_cap_usd=1)
    sent = json.loads(api.handler(create_event(aws), LambdaContext())["body"])
    dropped = json.loads(api.handler(create_event(aws), LambdaContext())["body"])
    load_handler("submit").handler({**event("submit"), "job_id": sent["id"]}, LambdaContext())
    fail = load_handler("fail").handler
    fail({**event("fail"), "job_id": dropped["id"]}, LambdaContext())
    assert clients.job_store().get(sent["id"]).charge == "spent"
    assert clients.job_store().get(dropped["id"]).charge == "released"
    usage = json.loads(api.handler(usage_event(aws), LambdaContext())["body"])
    jobs = usage["jobs"]
    assert (jobs["accepted"], jobs["submitted"], jobs["released"], jobs["failed"]) == (2, 1, 1, 1)
    assert (usage["wavespeed_usd"], usage["reserved_usd"], usage["remaining_usd"]) == (0.005, 0.0, 0.995)
    assert usage["aws_estimated_usd"] > 0 and usage["cap_usd"] == 1.0


def test_a_retried_submit_settles_a_price_once(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    priced = unsaved_job(aws)
    assert clients.gate().create(priced, clients.job_store())
    handler = load_handler("submit").handler
    handler({**event("submit"), "job_id": priced.id}, LambdaContext())
    handler({**event("submit"), "job_id": priced.id, "task_token": "again"}, LambdaContext())
    found = counters(aws)
    assert (found["spent"], found["submitted"], found["reserved"]) == (PRICE, 1, 0)


def test_a_submit_records_its_prediction_and_settles_in_one_transaction(
    aws: Aws, wavespeed: FakeWaveSpeed
) -> None:
    priced = unsaved_job(aws)
    assert clients.gate().create(priced, clients.job_store())
    writes: list[str] = []
    client = clients.dynamodb()
    client.meta.events.register(
        "before-parameter-build.dynamodb.UpdateItem",
        lambda params, **_: (
            writes.append(params["UpdateExpression"])
            if params["Key"]["pk"]["S"] == f"JOB#{priced.id}"
            else None
        ),
    )
    client.meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems",
        lambda params, **_: writes.extend(
            "transaction: " + item["Update"]["UpdateExpression"]
            for item in params["TransactItems"]
            if item["Update"]["Key"]["pk"]["S"] == f"JOB#{priced.id}"
        ),
    )
    out = load_handler("submit").handler({**event("submit"), "job_id": priced.id}, LambdaContext())
    [intent, moved] = writes  # the intent, then one transaction: the prediction and the charge
    assert "submit_attempt = :a" in intent
    assert moved.startswith("transaction: SET #charge = :to") and "prediction_id = :pid" in moved
    job = clients.job_store().get(priced.id)
    assert (job.status, job.prediction_id, job.charge) == (JobStatus.SUBMITTED, out["prediction_id"], "spent")
    found = counters(aws)
    assert (found["spent"], found["submitted"], found["reserved"]) == (PRICE, 1, 0)


def test_a_job_canceled_during_its_post_keeps_it_unrecorded_and_its_price_is_spent(
    aws: Aws, wavespeed: FakeWaveSpeed
) -> None:
    priced = unsaved_job(aws)
    assert clients.gate().create(priced, clients.job_store())
    submit = wavespeed._submit

    def cancel_then_submit(request: Any) -> Any:
        clients.job_store().transition(priced.id, JobStatus.CANCELED)
        return submit(request)

    wavespeed._submit = cancel_then_submit  # type: ignore[method-assign]
    load_handler("submit").handler({**event("submit"), "job_id": priced.id}, LambdaContext())
    job = clients.job_store().get(priced.id)
    assert (job.status, job.prediction_id, job.charge) == (JobStatus.CANCELED, None, "spent")
    found = counters(aws)
    assert (found["spent"], found["submitted"], found["reserved"]) == (PRICE, 1, 0)


def test_usage_of_another_month_is_empty_and_a_bad_month_is_422(api: Any, aws: Aws) -> None:
    usage = json.loads(api.handler(usage_event(aws, "month=2020-01"), LambdaContext())["body"])
    assert (usage["month"], usage["jobs"]["accepted"], usage["wavespeed_usd"]) == ("2020-01", 0, 0.0)
    assert api.handler(usage_event(aws, "month=2020-13"), LambdaContext())["statusCode"] == 422


def test_an_s3_upload_over_the_cap_fails_spend_cap_reached(aws: Aws) -> None:
    set_limits(aws, monthly_spend_cap_usd=0)
    sample = put_upload(aws, "uploads/a.png", image_bytes(), {"maskgate": json.dumps({"prompt": "x"})})
    [found] = load_handler("on_upload").handler(sample, LambdaContext())["jobs"]
    job = clients.job_store().get(found["id"])
    assert (job.status, job.error and job.error.type) == (JobStatus.FAILED, "spend_cap_reached")
    assert aws.executions() == [job.id]  # its workflow runs, to the failure's webhook


def test_an_s3_upload_over_a_quota_waits_queued_until_it_fits(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    set_limits(aws, max_jobs_in_flight=1)
    holder = queued_job(aws)
    clients.gate().quotas.take(aws.tenant, holder.id, clients.gate().limits.get(aws.tenant))
    sample = put_upload(aws, "uploads/b.png", image_bytes(), {"maskgate": json.dumps({"prompt": "x"})})
    [found] = load_handler("on_upload").handler(sample, LambdaContext())["jobs"]
    submit = load_handler("submit").handler
    with pytest.raises(QuotaDeferred):
        submit({**event("submit"), "job_id": found["id"]}, LambdaContext())
    assert clients.job_store().get(found["id"]).status is JobStatus.QUEUED and wavespeed.submissions == []
    clients.gate().quotas.release(aws.tenant, holder.id)
    submit({**event("submit"), "job_id": found["id"]}, LambdaContext())
    assert clients.job_store().get(found["id"]).status is JobStatus.SUBMITTED


def test_an_s3_job_whose_quota_never_frees_fails_quota_exceeded_and_releases_its_price(aws: Aws) -> None:
    sample = put_upload(aws, "uploads/c.png", image_bytes(), {"maskgate": json.dumps({"prompt": "x"})})
    [found] = load_handler("on_upload").handler(sample, LambdaContext())["jobs"]
    failed = {"job_id": found["id"], "error": {"Error": "QuotaDeferred", "Cause": "{}"}}
    load_handler("fail").handler({**event("fail"), **failed}, LambdaContext())
    job = clients.job_store().get(found["id"])
    assert (job.error and job.error.type, job.charge) == ("quota_exceeded", "released")


def test_the_spend_threshold_is_sent_once_a_month_to_the_endpoints_that_take_it(
    api: Any, aws: Aws, receiver: Receiver
) -> None:
    set_limits(aws, monthly_spend_cap_usd=0.02, spend_threshold=0.5)  # the notice at $0.01: 2 jobs
    taker = clients.endpoint_store().create(
        aws.tenant,
        EndpointCreate(url="http://127.0.0.1:8765/spend", event_types=["tenant.spend_threshold"]),
    )
    clients.endpoint_store().create(
        aws.tenant, EndpointCreate(url="http://127.0.0.1:8765/jobs", event_types=["segmentation.failed"])
    )
    for _ in range(4):
        assert api.handler(create_event(aws), LambdaContext())["statusCode"] == 202
    [sent] = [r for r in receiver.requests if r.url.path == "/spend"]
    assert not [r for r in receiver.requests if r.url.path == "/jobs"]
    body = Webhook(taker.secret).verify(sent.content, dict(sent.headers))
    assert body["type"] == "tenant.spend_threshold"
    assert body["data"] == {
        "tenant": aws.tenant,
        "month": month_of(datetime.now(UTC)),
        "threshold": 0.5,
        "cap_usd": 0.02,
        "month_spend_usd": 0.01,
    }
    assert counters(aws)["threshold_at"] is not None
    # kept, as every tenant event is: its retries (and a resend) send these same bytes
    kept = clients.notifier().events.get(threshold_webhook_id(aws.tenant, month_of(datetime.now(UTC))))
    assert kept.body.encode() == sent.content and kept.type == "tenant.spend_threshold"
    assert sent.headers["webhook-id"] == kept.webhook_id
    assert kept.told == (taker.id,)  # kept with the endpoints it was sent to (the reconcile sweep's list)


def killed(*_: Any) -> None:
    raise RuntimeError("killed")


def threshold_taker(aws: Aws) -> Any:
    """Limits whose notice comes at $0.01 (the second job), and an endpoint that takes it."""
    set_limits(aws, monthly_spend_cap_usd=0.02, spend_threshold=0.5)
    return clients.endpoint_store().create(
        aws.tenant,
        EndpointCreate(url="http://127.0.0.1:8765/spend", event_types=["tenant.spend_threshold"]),
    )


def test_a_threshold_notice_whose_request_died_before_the_mark_is_sent_by_the_next_with_its_bytes(
    aws: Aws, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notice is kept before the month is marked: the next request that sees the crossing marks
    the month and sends the bytes kept first, not its own."""
    taker = threshold_taker(aws)
    gate = clients.gate()
    assert gate.create(unsaved_job(aws), clients.job_store())
    mark = SpendLedger.mark_threshold
    monkeypatch.setattr(SpendLedger, "mark_threshold", killed)
    with pytest.raises(RuntimeError, match="killed"):
        gate.create(unsaved_job(aws), clients.job_store())  # crossed at $0.01, kept, died before the mark
    kept = clients.notifier().events.get(threshold_webhook_id(aws.tenant, month_of(datetime.now(UTC))))
    assert receiver.requests == [] and counters(aws)["threshold_at"] is None
    monkeypatch.setattr(SpendLedger, "mark_threshold", mark)
    assert gate.create(unsaved_job(aws), clients.job_store())  # at $0.015: marks, sends the kept notice
    [sent] = receiver.requests
    assert sent.content == kept.body.encode() and json.loads(sent.content)["data"]["month_spend_usd"] == 0.01
    Webhook(taker.secret).verify(sent.content, dict(sent.headers))


def test_a_threshold_notice_whose_request_died_after_the_mark_is_sent_by_the_reconcile_sweep(
    aws: Aws, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    taker = threshold_taker(aws)
    # its clock four minutes back: the event is kept before the sweep's grace period
    gate = dataclasses.replace(clients.gate(), now=lambda: datetime.now(UTC) - timedelta(minutes=4))
    monkeypatch.setattr(Notifier, "tell", killed)
    for _ in range(2):
        assert gate.create(unsaved_job(aws), clients.job_store())  # the second crossed: kept, marked, died
    monkeypatch.undo()
    assert receiver.requests == [] and counters(aws)["threshold_at"] is not None
    msg_id = threshold_webhook_id(aws.tenant, month_of(datetime.now(UTC)))
    report = load_handler("reconcile").handler(ReconcileInput(grace_seconds=0).model_dump(), LambdaContext())
    assert report is not None
    # (its two jobs, never started here, are restarted too)
    assert [(r["message_id"], r["action"]) for r in report["repairs"] if r["message_id"]] == [
        (msg_id, "start_unit")
    ]
    machine = clients.delivery_units().state_machine_arn
    execution = machine.replace(":stateMachine:", ":execution:") + f":{unit_name(msg_id, taker.id)}"
    unit = json.loads(aws.client("stepfunctions").describe_execution(executionArn=execution)["input"])
    assert (unit["message_id"], unit["endpoint_id"], unit["step"]) == (msg_id, taker.id, 0)


def test_two_tenants_crossing_in_one_month_each_get_and_keep_their_own_notice(
    aws: Aws, receiver: Receiver
) -> None:
    """The notice's webhook-id names the tenant: one tenant's kept notice (what its retries and a resend
    send) is never overwritten by another's of the same month."""
    tenants = (aws.tenant, "other-tenant")
    gate = clients.gate()
    endpoints = {}
    for tenant in tenants:
        gate.limits.set(tenant, {"monthly_spend_cap_usd": 0.02, "spend_threshold": 0.5})
        endpoints[tenant] = clients.endpoint_store().create(
            tenant,
            EndpointCreate(url=f"http://127.0.0.1:8765/{tenant}", event_types=["tenant.spend_threshold"]),
        )
    for tenant in tenants:
        for _ in range(2):
            assert gate.create(unsaved_job(aws).model_copy(update={"tenant": tenant}), clients.job_store())
    month = month_of(datetime.now(UTC))
    ids = set()
    for tenant in tenants:
        [sent] = [r for r in receiver.requests if r.url.path == f"/{tenant}"]
        body = Webhook(endpoints[tenant].secret).verify(sent.content, dict(sent.headers))
        assert body["data"]["tenant"] == tenant
        kept = clients.notifier().events.get(sent.headers["webhook-id"])
        assert (kept.tenant, kept.body.encode()) == (tenant, sent.content)
        assert kept.webhook_id == threshold_webhook_id(tenant, month)
        ids.add(kept.webhook_id)
    assert len(ids) == 2


def test_reconcile_releases_the_price_a_finished_job_still_holds(aws: Aws) -> None:
    job = unsaved_job(aws, datetime.now(UTC) - timedelta(minutes=10))
    assert clients.gate().create(job, clients.job_store())
    # the job ended, but its step died before the ledger heard of it
    unhooked = JobStore(table=aws.table, client=clients.dynamodb())
    unhooked.transition(job.id, JobStatus.FAILED)
    assert unhooked.get(job.id).charge == "reserved"
    report = load_handler("reconcile").handler(ReconcileInput(grace_seconds=0).model_dump(), LambdaContext())
    assert report is not None
    assert clients.job_store().get(job.id).charge == "released"
    assert counters(aws)["reserved"] == 0


def test_a_quota_refusal_takes_no_place_and_counts_nothing(aws: Aws) -> None:
    set_limits(aws, max_jobs_in_flight=5, images_per_day=1)
    gate = clients.gate()
    limits = gate.limits.get(aws.tenant)
    gate.quotas.take(aws.tenant, "seg_first", limits)
    with pytest.raises(QuotaExceeded):
        gate.quotas.take(aws.tenant, "seg_second", limits)
    assert list(gate.quotas.in_flight(aws.tenant)) == ["seg_first"]


def test_a_create_that_meets_another_transaction_is_tried_again(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = clients.dynamodb()
    transact = client.transact_write_items
    met: list[int] = []

    def busy_once(**request: Any) -> Any:
        if not met:
            met.append(1)
            raise client.exceptions.TransactionCanceledException(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
                },
                "TransactWriteItems",
            )
        return transact(**request)

    monkeypatch.setattr(client, "transact_write_items", busy_once)
    job = unsaved_job(aws)
    assert clients.gate().create(job, clients.job_store())
    assert met == [1] and counters(aws)["accepted"] == 1


def test_a_cache_hit_gives_its_reservation_back_and_counts_what_it_saved(api: Any, aws: Aws) -> None:
    job = unsaved_job(aws)
    assert clients.gate().create(job, clients.job_store())
    assert clients.gate().ledger.release(clients.job_store().get(job.id), cache_hit=True)
    clients.job_store().transition(job.id, JobStatus.SUCCEEDED)  # the hit's end counts once, as any end
    usage = json.loads(api.handler(usage_event(aws), LambdaContext())["body"])
    assert (usage["jobs"]["cache_hits"], usage["cache_saved_usd"], usage["reserved_usd"]) == (1, 0.005, 0.0)
    assert (usage["jobs"]["released"], usage["jobs"]["succeeded"], usage["wavespeed_usd"]) == (1, 1, 0.0)
