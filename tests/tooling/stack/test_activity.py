"""maskgate_local.stack.activity: the lines ``maskgate dev`` prints per job transition and webhook attempt."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from maskgate.contracts.job import DeliveryAttempt, Job, JobError, JobStatus
from maskgate.errors import JobNotFound
from maskgate_local.stack.activity import Activity, Invocation, job_ids, step_name

JOB = "seg_01M97029XAYNVX5WM9QZ6JT34N"
OTHER = "seg_01M9703JXKQ7QEQEC3Y5G4KPMJ"
AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def job(status: JobStatus, *, deliveries: int = 0, error: JobError | None = None) -> Job:
    attempts = [
        DeliveryAttempt(
            webhook_id=f"msg_{JOB}_succeeded",
            event="segmentation.succeeded",
            attempt=n,
            at=AT,
            url="http://127.0.0.1:9/hooks",
            status_code=503 if n == 1 else 204,
            latency_ms=12,
            outcome="retrying" if n == 1 else "delivered",
        )
        for n in range(1, deliveries + 1)
    ]
    return Job(
        id=JOB,
        tenant="default",
        status=status,
        source="api",
        created_at=AT,
        updated_at=AT,
        deliveries=attempts,
        error=error,
    )


class Jobs:
    """A job store whose one job changes as the test says."""

    def __init__(self, current: Job | None) -> None:
        self.current = current

    def get(self, job_id: str) -> Job:
        if self.current is None or job_id != self.current.id:
            raise JobNotFound(f"no job {job_id}")
        return self.current


def invocation(function: str, event: Any = None, payload: Any = None, seconds: float = 0.25) -> Invocation:
    return Invocation(function, event or {"job_id": JOB}, json.dumps(payload or {}), False, seconds)


@pytest.mark.parametrize(
    ("logical_id", "step"),
    [("OnUploadFunction", "on_upload"), ("SubmitFunction", "submit"), ("ApiFunction", "api")],
)
def test_step_name_is_the_functions_folder(logical_id: str, step: str) -> None:
    assert step_name(logical_id) == step


def test_job_ids_come_from_the_step_event_the_api_path_and_query_and_answers() -> None:
    api_event = {"rawPath": f"/v1/segmentations/{JOB}", "rawQueryString": f"job={OTHER}"}
    created = {"statusCode": 202, "body": json.dumps({"id": OTHER, "status": "queued"})}
    uploaded = {"jobs": [{"id": JOB, "status": "queued"}, {"id": OTHER, "status": "failed"}]}

    assert job_ids({"job_id": JOB}, "{}") == [JOB]
    assert job_ids(api_event, json.dumps(created)) == [JOB, OTHER]
    assert job_ids({"Records": []}, json.dumps(uploaded)) == [JOB, OTHER]
    assert job_ids({}, "not json") == []
    assert job_ids({}, json.dumps({"statusCode": 200, "body": "[]"})) == []


def test_a_transition_is_one_line_with_the_step_the_time_in_the_last_status_and_the_invocation() -> None:
    jobs, said, clock = Jobs(job(JobStatus.QUEUED)), [], iter([10.0, 12.5])
    activity = Activity(
        jobs=jobs,  # type: ignore[arg-type]
        say=said.append,
        clock=lambda: next(clock),
        wall=lambda: 0.0,
    )

    activity.observe(invocation("api", seconds=0.4))
    jobs.current = job(JobStatus.SUBMITTED)
    activity.observe(invocation("submit", seconds=0.61))

    assert len(said) == 2
    assert said[0].endswith(f"{JOB}  queued  (api 0.40 s)")
    assert said[1].endswith(f"{JOB}  queued → submitted after 2.5 s  (submit 0.61 s)")


def test_nothing_is_printed_when_nothing_changed_or_the_job_is_unknown() -> None:
    jobs, said = Jobs(job(JobStatus.SUBMITTED)), []
    activity = Activity(jobs=jobs, say=said.append)  # type: ignore[arg-type]
    activity.observe(invocation("submit"))
    activity.observe(invocation("poll"))
    activity.observe(invocation("api", event={"job_id": OTHER}))

    assert len(said) == 1


def test_each_new_webhook_attempt_is_one_line_and_failures_show_their_error() -> None:
    error = JobError(type="upstream_failed", message="the prediction failed")
    jobs, said = Jobs(job(JobStatus.SUCCEEDED, deliveries=1)), []
    activity = Activity(jobs=jobs, say=said.append)  # type: ignore[arg-type]

    activity.observe(invocation("store"))
    jobs.current = job(JobStatus.SUCCEEDED, deliveries=2)
    activity.observe(invocation("deliver"))
    jobs.current = job(JobStatus.FAILED, deliveries=2, error=error)
    activity.observe(invocation("fail"))

    assert said[1].endswith("webhook segmentation.succeeded attempt 1: 503 in 12 ms → retrying")
    assert said[2].endswith("webhook segmentation.succeeded attempt 2: 204 in 12 ms → delivered")
    assert f"{JOB}  succeeded → failed after " in said[3]
    assert said[3].endswith("(fail 0.25 s)  upstream_failed: the prediction failed")
    assert len(said) == 4


def test_an_invocation_that_ended_in_an_error_names_its_type_not_failed() -> None:
    """A cache hit ends Submit with ResultReused (the workflow's routing to Notify): the job succeeded."""
    jobs, said = Jobs(job(JobStatus.QUEUED)), []
    activity = Activity(jobs=jobs, say=said.append, clock=lambda: 1.0, wall=lambda: 0.0)  # type: ignore[arg-type]
    activity.observe(invocation("api", seconds=0.06))
    jobs.current = job(JobStatus.SUCCEEDED)
    reused = {"errorType": "ResultReused", "errorMessage": f"results reused from {OTHER}"}

    activity.observe(Invocation("submit", {"job_id": JOB}, json.dumps(reused), True, 0.08))
    jobs.current = job(JobStatus.FAILED, error=JobError(type="internal_error", message="boom"))
    activity.observe(Invocation("store", {"job_id": JOB}, "not json", True, 0.1))

    assert said[1].endswith(f"{JOB}  queued → succeeded after 0.0 s  (submit 0.08 s, raised ResultReused)")
    assert "failed" not in said[1].split("→")[1]
    assert "(store 0.10 s, raised an error)" in said[2]
