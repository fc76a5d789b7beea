"""The reconcile sweep's decisions, pure: which jobs, slots and webhooks need a repair, and which."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from maskgate.contracts.job import DeliveryAttempt, ImageLocation, Job, JobStatus
from maskgate.contracts.prompts import Prompts
from maskgate.contracts.steps import ReconcileInput
from maskgate.ids import new_job_id
from maskgate.steps.reconcile import (
    Finding,
    Policy,
    RunningUnits,
    event_stopped,
    longest_after_a_retry,
    longest_delivery,
    numbered,
    orphaned,
    stalled,
    undelivered,
)
from maskgate.stores.attempt_log import LoggedAttempt
from maskgate.stores.job_index import Seen
from maskgate.workflow.executions import Workflow
from maskgate.workflow.timings import Timings, execution_input
from tests.support.artefacts import event

NOW = datetime(2026, 12, 4, 0, 20, tzinfo=UTC)
POLICY = Policy(
    now=NOW,
    grace=timedelta(minutes=2),
    deadline=timedelta(minutes=15),
    upload_expiry=timedelta(minutes=16),
    interval=timedelta(minutes=15),
)
HOOK = "https://example.com/hooks"
NONE_RUNNING: frozenset[str] = frozenset()


def job(
    status: JobStatus = JobStatus.SUBMITTED, *, age: timedelta = timedelta(minutes=5), **fields: Any
) -> Job:
    created = NOW - age
    values: dict[str, Any] = {
        "id": new_job_id(created),
        "tenant": "default",
        "status": status,
        "source": "api",
        "request": Prompts(prompt="the cat", webhook_url=HOOK),
        "image": ImageLocation(url="https://example.com/cat.png"),
        "created_at": created,
        "updated_at": created,
        "submit_attempt": "a1",
        **fields,
    }
    return Job(**values)


def finished(status: JobStatus = JobStatus.SUCCEEDED, **fields: Any) -> Job:
    return job(status, **{"finished_at": NOW - timedelta(minutes=4), "webhook_body": "{}", **fields})


def attempt(job_: Job, outcome: str, next_at: datetime | None = None) -> DeliveryAttempt:
    return DeliveryAttempt(
        webhook_id="msg_x",
        event="segmentation.succeeded" if job_.status is JobStatus.SUCCEEDED else "segmentation.failed",
        attempt=1,
        at=NOW - timedelta(minutes=4),
        url=HOOK,
        outcome=outcome,
        next_attempt_at=next_at,
    )


# the window ---------------------------------------------------------------------------------------


def test_policy_window_covers_the_longest_wait_two_intervals_and_a_margin() -> None:
    assert POLICY.window == timedelta(minutes=16 + 30 + 10)


def test_policy_days_are_every_day_the_window_overlaps() -> None:
    # 00:20 minus 56 minutes is 23:24 the day before
    assert POLICY.days() == ["2026-12-03", "2026-12-04"]
    assert replace(POLICY, now=NOW + timedelta(hours=2)).days() == ["2026-12-04"]


@pytest.mark.parametrize(
    ("stored", "inside"),
    [
        ("2026-12-03T23:24:00Z", True),  # the first second of the window, without fraction
        ("2026-12-03T23:24:00.000001Z", True),
        ("2026-12-03T23:23:59.999999Z", False),
        ("2026-12-04T00:17:59.5Z", True),
        ("2026-12-04T00:18:00Z", False),  # the grace period's last second is left to the normal flow
    ],
)
def test_policy_bounds_sort_around_stored_creation_times(stored: str, inside: bool) -> None:
    low, high = POLICY.bounds()
    assert (low <= stored <= high) is inside


def test_stored_creation_times_are_what_the_bounds_are_compared_with() -> None:
    created = job().created_at.replace(microsecond=0)
    assert job(created_at=created).model_dump(mode="json")["created_at"] == "2026-12-04T00:15:00Z"


# restarting ------------------------------------------------------------------------------------


def test_a_running_unit_is_one_of_the_deliverys_names_with_any_number() -> None:
    names = {
        "msg_1_succeeded_ep_2-s1",
        "msg_3_succeeded-x",
        "msg_4_succeeded-s2-s3",
        "msg_5-r12",
        "msg_6-x0a9f",
    }
    running = replace(POLICY, units=RunningUnits(lambda: frozenset(names)))
    assert (
        running.unit_runs("msg_1_succeeded_ep_2")
        and running.unit_runs("msg_5")
        and running.unit_runs("msg_6")
    )
    assert not running.unit_runs("msg_1_succeeded")  # an endpoint's unit is not the own webhook's
    assert not running.unit_runs("msg_3_succeeded")  # no number
    assert not running.unit_runs("msg_4_succeeded")
    assert not POLICY.unit_runs("msg_5")  # no delivery machine


def test_running_units_are_listed_once_when_first_asked_and_a_failed_listing_fails_every_ask() -> None:
    calls: list[int] = []

    def listing() -> frozenset[str]:
        calls.append(1)
        return frozenset({"msg_1-s1"})

    units = RunningUnits(listing)
    assert calls == []  # nothing listed until a repair asks
    assert units.bases() == {"msg_1"} and units.bases() == {"msg_1"} and calls == [1]

    def throttled() -> frozenset[str]:
        calls.append(2)
        raise RuntimeError("throttled")

    failing = replace(POLICY, units=RunningUnits(throttled))
    for _ in range(2):
        with pytest.raises(RuntimeError, match="throttled"):
            failing.unit_runs("msg_1")  # no unit may be started beside one that might run
    assert calls == [1, 2]


def test_execution_input_is_the_first_starts() -> None:
    sent: dict[str, Any] = {}

    class Client:
        class exceptions:  # boto3's name
            ExecutionAlreadyExists = KeyError

        def start_execution(self, **call: Any) -> None:
            sent.update(call)

    timings = Timings(initial_seconds=3, max_seconds=7, deadline_seconds=120)
    created = NOW - timedelta(minutes=1)
    Workflow(state_machine_arn="arn:sm", client=Client(), timings=timings).start("seg_1", created_at=created)  # type: ignore[arg-type]
    assert execution_input("seg_1", created_at=created, timings=timings) == json.loads(sent["input"])


def test_a_job_whose_execution_runs_needs_nothing() -> None:
    one = job()
    assert stalled(Seen(one), frozenset({one.id}), POLICY) is None


def test_a_job_whose_recorded_restart_runs_needs_nothing() -> None:
    one = job()
    seen = Seen(one, execution=f"{one.id}-r2")
    assert stalled(seen, frozenset({f"{one.id}-r2"}), POLICY) is None
    assert stalled(seen, frozenset({one.id}), POLICY) == Finding("stalled", "restart")


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.SUBMITTED, JobStatus.PROCESSING])
def test_an_unfinished_job_without_a_running_execution_is_restarted(status: JobStatus) -> None:
    assert stalled(Seen(job(status)), NONE_RUNNING, POLICY) == Finding("stalled", "restart")


def test_a_job_updated_within_the_grace_period_is_left_alone() -> None:
    recent = job(updated_at=NOW - timedelta(seconds=119))
    assert stalled(Seen(recent), NONE_RUNNING, POLICY) is None


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED])
def test_a_finished_job_is_never_restarted(status: JobStatus) -> None:
    assert stalled(Seen(finished(status)), NONE_RUNNING, POLICY) is None


@pytest.mark.parametrize("missing", ["request", "image"])
def test_a_job_that_cannot_run_is_failed_internal_error(missing: str) -> None:
    gone: dict[str, Any] = {missing: None}
    found = stalled(Seen(job(JobStatus.QUEUED, **gone)), NONE_RUNNING, POLICY)
    assert found is not None and (found.action, found.error and found.error.type) == (
        "fail",
        "internal_error",
    )


def test_a_job_never_submitted_past_its_deadline_is_failed_timeout_not_submitted_late() -> None:
    late = job(JobStatus.QUEUED, age=timedelta(minutes=15), submit_attempt=None)
    found = stalled(Seen(late), NONE_RUNNING, POLICY)
    assert found is not None and (found.action, found.error and found.error.type) == ("fail", "timeout")


@pytest.mark.parametrize(
    "fields", [{"submit_attempt": "a1"}, {"prediction_id": "p1", "submit_attempt": None}]
)
def test_a_submitted_job_past_its_deadline_is_restarted_to_adopt_or_time_out(fields: dict[str, Any]) -> None:
    late = job(JobStatus.SUBMITTED, age=timedelta(minutes=20), **fields)
    assert stalled(Seen(late), NONE_RUNNING, POLICY) == Finding("stalled", "restart")


def test_a_job_restarted_too_often_is_failed() -> None:
    one = job()
    found = stalled(Seen(one, execution=f"{one.id}-r5"), NONE_RUNNING, POLICY)
    assert found is not None and found.action == "fail"
    assert stalled(Seen(one, execution=f"{one.id}-r4"), NONE_RUNNING, POLICY) == Finding("stalled", "restart")


def test_numbered_reads_only_names_of_the_base() -> None:
    assert numbered("seg_A-r12", "seg_A", "r") == 12
    assert numbered("seg_B-r3", "seg_A", "r") == 0
    assert numbered(None, "seg_A", "s") == 0
    assert numbered("msg_A_succeeded-s2", "msg_A_succeeded", "s") == 2


# uploads ---------------------------------------------------------------------------------------


def test_an_upload_past_its_time_is_expired() -> None:
    waiting = job(JobStatus.AWAITING_UPLOAD, age=timedelta(minutes=18, seconds=1), submit_attempt=None)
    assert stalled(Seen(waiting), NONE_RUNNING, POLICY) == Finding("upload_expired", "expire")


def test_an_upload_within_its_time_and_the_grace_is_left_to_its_expiry_execution() -> None:
    waiting = job(JobStatus.AWAITING_UPLOAD, age=timedelta(minutes=17, seconds=59), submit_attempt=None)
    assert stalled(Seen(waiting), NONE_RUNNING, POLICY) is None


# webhooks --------------------------------------------------------------------------------------


def test_a_pending_first_attempt_is_notified_again() -> None:
    pending = finished(webhook_pending="msg_x")
    assert undelivered(Seen(pending), NONE_RUNNING, POLICY) == Finding("webhook", "notify")


def test_a_job_never_notified_is_notified() -> None:
    silent = finished(JobStatus.FAILED, webhook_body=None)
    assert undelivered(Seen(silent), NONE_RUNNING, POLICY) == Finding("webhook", "notify")


def test_an_overdue_retry_gets_a_unit() -> None:
    one = finished()
    overdue = one.model_copy(update={"deliveries": [attempt(one, "retrying", NOW - timedelta(minutes=3))]})
    assert undelivered(Seen(overdue), NONE_RUNNING, POLICY) == Finding("webhook", "start_unit")


@pytest.mark.parametrize(
    ("outcome", "next_in"),
    [("retrying", timedelta(minutes=1)), ("retrying", -timedelta(seconds=60)), ("delivered", None)],
)
def test_a_retry_not_yet_due_or_a_delivered_webhook_needs_nothing(
    outcome: str, next_in: timedelta | None
) -> None:
    one = finished()
    next_at = NOW + next_in if next_in is not None else None
    seen = Seen(one.model_copy(update={"deliveries": [attempt(one, outcome, next_at)]}))
    assert undelivered(seen, NONE_RUNNING, POLICY) is None


def test_a_webhook_is_left_alone_while_the_jobs_execution_runs_or_within_the_grace() -> None:
    pending = finished(webhook_pending="msg_x")
    assert undelivered(Seen(pending), frozenset({pending.id}), POLICY) is None
    young = pending.model_copy(update={"finished_at": NOW - timedelta(seconds=30)})
    assert undelivered(Seen(young), NONE_RUNNING, POLICY) is None


def test_a_job_without_a_webhook_url_needs_no_webhook() -> None:
    quiet = finished(request=Prompts(prompt="the cat"), webhook_body=None)
    assert undelivered(Seen(quiet), NONE_RUNNING, POLICY) is None


# slots -----------------------------------------------------------------------------------------


def test_orphaned_slots_are_those_of_finished_or_missing_jobs_taken_before_the_grace() -> None:
    live, done = job(), finished()
    old, young = (NOW - timedelta(minutes=3)).timestamp(), (NOW - timedelta(seconds=30)).timestamp()
    slots = {live.id: old, done.id: old, "seg_GONE": old, "seg_YOUNG": young}
    assert orphaned(slots, {live.id: Seen(live), done.id: Seen(done)}, POLICY) == sorted(
        [done.id, "seg_GONE"]
    )


def test_a_slot_of_a_job_that_just_ended_is_left_to_its_fail_step() -> None:
    # the callback failed it 30 s ago; its workflow has not reached Fail (which gives the slot back) yet
    just_failed = finished(JobStatus.FAILED, finished_at=NOW - timedelta(seconds=30))
    taken = (NOW - timedelta(minutes=3)).timestamp()

    assert orphaned({just_failed.id: taken}, {just_failed.id: Seen(just_failed)}, POLICY) == []


# the event -------------------------------------------------------------------------------------


def test_the_sample_event_parses_and_unknown_fields_are_refused() -> None:
    assert ReconcileInput.model_validate(event("reconcile")) == ReconcileInput(dry_run=False)
    with pytest.raises(ValidationError):
        ReconcileInput.model_validate({"dry_run": True, "force": True})
    with pytest.raises(ValidationError):
        ReconcileInput.model_validate({"grace_seconds": -1})


# a tenant event's delivery to one endpoint -------------------------------------------------------


def logged(status: str, next_at: datetime | None) -> LoggedAttempt:
    return LoggedAttempt.model_validate(
        {
            "at": NOW - timedelta(minutes=10),
            "webhook_id": "msg_ep_1_disabled_2",
            "event": "endpoint.disabled",
            "attempt": 1,
            "status": status,
            "next_attempt_at": next_at,
        }
    )


OVERDUE = NOW - timedelta(minutes=3)  # past, and past the grace
DUE_SOON = NOW - timedelta(minutes=1)  # past, within the grace
KEPT = NOW - timedelta(minutes=10)


@pytest.mark.parametrize(
    ("attempts", "units", "kept_at", "stopped"),
    [
        ([logged("failed", OVERDUE)], ["ABORTED"], KEPT, True),
        ([logged("failed", OVERDUE)], [], KEPT, True),  # its unit never started
        ([logged("failed", OVERDUE)], ["FAILED", "RUNNING"], KEPT, False),  # a unit carries on
        ([logged("failed", DUE_SOON)], ["FAILED"], KEPT, False),  # within the grace
        ([logged("failed", None)], ["SUCCEEDED"], KEPT, False),  # given up (dead-lettered)
        ([logged("succeeded", None)], [], KEPT, False),  # delivered
        ([], [], KEPT, True),  # never attempted: the telling died
        ([], ["TIMED_OUT"], KEPT, True),
        ([], ["SUCCEEDED"], KEPT, False),  # its unit found the endpoint no longer takes it
        ([], [], NOW - timedelta(seconds=30), False),  # young
        ([], [], None, False),  # kept before events had a time
    ],
)
def test_a_tenant_events_delivery_is_stopped_when_nothing_carries_it_on(
    attempts: list[LoggedAttempt], units: list[str], kept_at: datetime | None, stopped: bool
) -> None:
    assert event_stopped(attempts, units, kept_at, POLICY) is stopped


def test_tenant_events_are_looked_for_over_the_span_the_intervals_and_the_margin() -> None:
    days, (low, high) = POLICY.over(timedelta(hours=24))
    assert days == ["2026-12-02", "2026-12-03", "2026-12-04"]
    assert (low, high) == ("2026-12-02T23:40:00", "2026-12-04T00:18:00")


def test_the_longest_delivery_covers_the_jitter_the_longest_retry_after_and_a_day_of_repairs() -> None:
    assert longest_delivery((5, 300)) == timedelta(seconds=2 * 6 * 3600, days=1)
    assert longest_delivery((30_000,)) == timedelta(seconds=33_000, days=1)  # 30,000 s + 10 % jitter


def test_a_retried_job_is_looked_at_for_the_longest_next_wait_and_a_day_after_its_last_retry() -> None:
    assert longest_after_a_retry((5, 300)) == timedelta(seconds=6 * 3600, days=1)  # Retry-After's cap
    assert longest_after_a_retry((5, 36_000, 300)) == timedelta(seconds=39_600, days=1)
    assert longest_after_a_retry(()) == timedelta(days=1)
