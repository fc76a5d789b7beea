"""WaveSpeed admission (maskgate.stores.admission) on moto: slots and submits per minute in the jobs table,
and the steps that take and give back a slot."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from maskgate import clients
from maskgate.contracts.job import JobError, JobStatus
from maskgate.errors import AdmissionDeferred, AdmissionQueued, UpstreamRejected
from maskgate.steps.cancel import cancel
from maskgate.stores.admission import SLOTS_KEY, Admission
from tests.integration.conftest import REGION, Aws, FakeTasks
from tests.integration.seeds import queued_job, submit_event
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import Clock, FakeWaveSpeed

NOW = 1_800_000_000.0


def admission(
    aws: Aws, *, concurrency: int = 2, per_minute: int = 0, clock: Clock[float] | None = None
) -> Admission:
    return Admission(
        table=aws.table,
        client=boto3.client("dynamodb", region_name=REGION),
        concurrency=concurrency,
        per_minute=per_minute,
        stale_after_seconds=900,
        clock=clock or Clock(NOW),
    )


def test_slots_admit_up_to_the_limit_then_queue(aws: Aws) -> None:
    gate = admission(aws, concurrency=2)
    gate.admit("seg_a", tenant="t")
    gate.admit("seg_b", tenant="t")
    with pytest.raises(AdmissionQueued, match="2 predictions already in flight"):
        gate.admit("seg_c", tenant="t")
    assert set(gate.in_flight()) == {"seg_a", "seg_b"}
    assert set(gate.waiters()) == {"seg_c"}


def test_a_job_that_holds_a_slot_is_admitted_again_without_a_second_one(aws: Aws) -> None:
    clock = Clock(NOW)
    gate = admission(aws, concurrency=2, clock=clock)
    gate.admit("seg_a", tenant="t")
    clock.now += 30
    gate.admit("seg_a", tenant="t")  # a retried Submit (WaveSpeed answered 429)
    gate.admit("seg_b", tenant="t")
    assert gate.in_flight() == {"seg_a": 1_800_000_000.0, "seg_b": 1_800_000_030.0}


def test_release_frees_the_slot_and_is_idempotent(aws: Aws) -> None:
    gate = admission(aws, concurrency=1)
    gate.admit("seg_a", tenant="t")
    gate.release("seg_a")
    gate.release("seg_a")
    gate.release("seg_never_admitted")
    gate.admit("seg_b", tenant="t")
    assert set(gate.in_flight()) == {"seg_b"}


def test_release_before_any_job_was_admitted_is_a_no_op(aws: Aws) -> None:
    admission(aws).release("seg_a")
    assert admission(aws).in_flight() == {}


def test_stale_slots_are_reclaimed_only_when_full(aws: Aws) -> None:
    clock = Clock(NOW)
    gate = admission(aws, concurrency=2, clock=clock)
    gate.admit("seg_crashed", tenant="t")
    clock.now += 900  # the deadline: a live job may still hold it
    gate.admit("seg_live", tenant="t")
    with pytest.raises(AdmissionQueued):
        gate.admit("seg_new", tenant="t")
    clock.now += 61  # deadline + a minute after the crashed one took it
    gate.admit("seg_new", tenant="t")
    assert set(gate.in_flight()) == {"seg_live", "seg_new"}


def test_submits_per_minute_defer_until_the_next_minute(aws: Aws) -> None:
    clock = Clock(NOW + 45)  # 45 s into a minute
    gate = admission(aws, concurrency=5, per_minute=2, clock=clock)
    gate.admit("seg_a", tenant="t")
    gate.admit("seg_b", tenant="t")
    with pytest.raises(AdmissionDeferred, match="2 used this minute") as caught:
        gate.admit("seg_c", tenant="t")
    assert caught.value.retry_after == 16
    assert set(gate.in_flight()) == {"seg_a", "seg_b"}  # the slot taken for seg_c was given back
    clock.now += 16
    gate.admit("seg_c", tenant="t")


def test_limits_of_zero_touch_nothing(aws: Aws) -> None:
    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"DynamoDB {name} called with admission off")

    gate = Admission(
        table=aws.table, client=Untouchable(), concurrency=0, per_minute=0, stale_after_seconds=900
    )  # type: ignore[arg-type]
    assert not gate.enabled
    for _ in range(5):
        gate.admit("seg_a", tenant="t")
    gate.release("seg_a")


def test_the_slots_item_is_one_item_beside_the_jobs(aws: Aws) -> None:
    admission(aws).admit("seg_a", tenant="t")
    item = aws.client("dynamodb").get_item(TableName=aws.table, Key={"pk": {"S": SLOTS_KEY}})["Item"]
    assert set(item["slots"]["M"]) == {"seg_a"}


# the steps ---------------------------------------------------------------------------------------


@pytest.fixture
def one_slot(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVESPEED_CONCURRENCY", "1")
    clients.reset()


def test_submit_waits_for_a_slot_and_sends_nothing_meanwhile(
    aws: Aws, wavespeed: FakeWaveSpeed, one_slot: None
) -> None:
    submit = load_handler("submit").handler
    first, second = queued_job(aws), queued_job(aws)
    submit(submit_event(first), LambdaContext())
    with pytest.raises(AdmissionQueued):
        submit(submit_event(second), LambdaContext())
    assert len(wavespeed.submissions) == 1
    assert clients.job_store().get(second.id).status is JobStatus.QUEUED


def test_store_gives_the_slot_back(aws: Aws, wavespeed: FakeWaveSpeed, one_slot: None) -> None:
    wavespeed.next_status = "completed"
    job = queued_job(aws)
    out = load_handler("submit").handler(submit_event(job), LambdaContext())
    assert set(clients.admission().in_flight()) == {job.id}
    load_handler("store").handler({"job_id": job.id, "prediction_id": out["prediction_id"]}, LambdaContext())
    assert clients.admission().in_flight() == {}


def test_fail_gives_the_slot_back(aws: Aws, wavespeed: FakeWaveSpeed, one_slot: None) -> None:
    job = queued_job(aws)
    load_handler("submit").handler(submit_event(job), LambdaContext())
    load_handler("fail").handler({**event("fail"), "job_id": job.id}, LambdaContext())
    assert clients.admission().in_flight() == {}
    load_handler("submit").handler(submit_event(queued_job(aws)), LambdaContext())  # the next one gets in


def test_cancel_gives_the_slot_back(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks, one_slot: None
) -> None:
    job = queued_job(aws)
    load_handler("submit").handler(submit_event(job), LambdaContext())
    submitted = clients.job_store().get(job.id)
    cancel(
        submitted,
        notifier=clients.notifier(),
        workflow=clients.workflow(),
        admission=clients.admission(),
        api_url="http://127.0.0.1:3000",
    )
    assert clients.admission().in_flight() == {}


def test_fail_gives_the_slot_back_when_the_callback_failed_the_job_first(
    aws: Aws, wavespeed: FakeWaveSpeed, one_slot: None
) -> None:
    """WaveSpeed's callback with a failed prediction marks the job failed before Fail runs."""
    job = queued_job(aws)
    load_handler("submit").handler(submit_event(job), LambdaContext())
    error = JobError(type="upstream_failed", message="could not be decoded")
    clients.job_store().transition(job.id, JobStatus.FAILED, error=error)
    load_handler("fail").handler({**event("fail"), "job_id": job.id}, LambdaContext())
    assert clients.admission().in_flight() == {}


def test_a_submit_that_outlived_its_wait_gives_the_slot_back(
    aws: Aws, wavespeed: FakeWaveSpeed, one_slot: None
) -> None:
    """The job ended on another path (canceled, timed out) while its Submit was still submitting."""
    job = queued_job(aws)
    real_submit = clients.wavespeed().submit

    def submit_while_the_job_ends(*args: Any, **kwargs: Any) -> Any:
        clients.job_store().transition(
            job.id, JobStatus.FAILED, error=JobError(type="timeout", message="late")
        )
        return real_submit(*args, **kwargs)

    clients.wavespeed().submit = submit_while_the_job_ends  # type: ignore[method-assign]
    load_handler("submit").handler(submit_event(job), LambdaContext())
    assert clients.admission().in_flight() == {}
    assert clients.job_store().get(job.id).status is JobStatus.FAILED


def test_a_rejected_submit_gives_the_slot_back(aws: Aws, wavespeed: FakeWaveSpeed, one_slot: None) -> None:
    wavespeed.submit_status = 400
    with pytest.raises(UpstreamRejected):
        load_handler("submit").handler(submit_event(queued_job(aws)), LambdaContext())
    assert clients.admission().in_flight() == {}
