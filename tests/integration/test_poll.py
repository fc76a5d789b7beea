"""The poll step on moto: a late callback's prediction read, resumed, waited on or timed out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from maskgate import clients
from maskgate.contracts.job import Job, JobStatus
from maskgate.errors import NotSubmitted, PredictionTimedOut, UpstreamFailed, UpstreamOutcomeUnknown
from maskgate.steps.poll import SUBMIT_MAY_RUN_SECONDS
from maskgate_local.template.sam import load_template
from tests.integration.conftest import Aws, FakeTasks
from tests.integration.seeds import queued_job, submitted
from tests.support.artefacts import TEMPLATE, LambdaContext, event, load_handler
from tests.support.fakes import FakeWaveSpeed


def poll_event(job: Job, **changes: Any) -> dict[str, Any]:
    deadline = int(datetime.now(UTC).timestamp()) + 600
    return {**event("poll"), "job_id": job.id, "deadline_at": deadline, "task_token": "poll-token", **changes}


def test_poll_processing_listens_again_and_marks_processing(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks
) -> None:
    job, _ = submitted(aws, wavespeed, "processing")
    assert load_handler("poll").handler(poll_event(job), LambdaContext())["outcome"] == "waiting"
    stored = clients.job_store().get(job.id)
    assert (stored.status, stored.task_token) == (JobStatus.PROCESSING, "poll-token")
    assert tasks.calls == []


def test_poll_completed_resumes_its_own_task_with_the_prediction(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks
) -> None:
    job, pid = submitted(aws, wavespeed, "completed")
    assert load_handler("poll").handler(poll_event(job), LambdaContext())["outcome"] == "completed"
    assert tasks.calls == [("success", "poll-token", {"job_id": job.id, "prediction_id": pid})]


def test_poll_failed_prediction_raises_upstream_failed(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks
) -> None:
    job, _ = submitted(aws, wavespeed, "failed")
    with pytest.raises(UpstreamFailed, match="could not be decoded"):
        load_handler("poll").handler(poll_event(job), LambdaContext())


def test_poll_past_deadline_raises_timeout(aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks) -> None:
    job, _ = submitted(aws, wavespeed, "processing")
    with pytest.raises(PredictionTimedOut):
        load_handler("poll").handler(poll_event(job, deadline_at=1), LambdaContext())


def test_poll_past_its_last_window_raises_timeout(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks
) -> None:
    job, _ = submitted(aws, wavespeed, "processing")
    with pytest.raises(PredictionTimedOut):
        load_handler("poll").handler(poll_event(job, attempt=31, polls_allowed=31), LambdaContext())


def test_poll_with_no_submit_under_way_sends_the_job_back_to_submit(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks
) -> None:
    """A Submit that outlived its wait and then got a 429 took its intent back: nobody retries it."""
    job = queued_job(aws)
    with pytest.raises(NotSubmitted):
        load_handler("poll").handler(poll_event(job), LambdaContext())
    assert clients.job_store().get(job.id).task_token == "poll-token"


def test_poll_with_a_submit_under_way_listens_again_and_submits_nothing(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks
) -> None:
    """Submit's wait also times its own invocation: a slow Submit is still running when Poll comes."""
    job = queued_job(aws, submit_attempt="slow-one", callback_token="t")
    assert load_handler("poll").handler(poll_event(job), LambdaContext())["outcome"] == "waiting"
    stored = clients.job_store().get(job.id)
    assert (stored.status, stored.task_token) == (JobStatus.QUEUED, "poll-token")
    assert wavespeed.submissions == [] and tasks.calls == []


def test_poll_before_any_submit_times_out_at_the_deadline(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks
) -> None:
    with pytest.raises(PredictionTimedOut, match="not submitted within the deadline"):
        load_handler("poll").handler(poll_event(queued_job(aws), deadline_at=1), LambdaContext())


def test_poll_past_the_deadline_waits_while_the_submit_may_still_be_posting(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks
) -> None:
    """A Submit slowed past the deadline may still land its POST: the job must still be waiting for
    its answer or callback, so no paid prediction is thrown away; once no Submit can be running, the
    outcome is unknown."""
    just_now = datetime.now(UTC)
    job = queued_job(aws, submit_attempt="slow", callback_token="t", submit_started_at=just_now)
    assert (
        load_handler("poll").handler(poll_event(job, deadline_at=1), LambdaContext())["outcome"] == "waiting"
    )
    long_ago = just_now - timedelta(seconds=SUBMIT_MAY_RUN_SECONDS)
    clients.dynamodb().update_item(
        TableName=aws.table,
        Key={"pk": {"S": f"JOB#{job.id}"}},
        UpdateExpression="SET submit_started_at = :t",
        ExpressionAttributeValues={":t": {"S": long_ago.isoformat()}},
    )
    with pytest.raises(UpstreamOutcomeUnknown):
        load_handler("poll").handler(poll_event(job, deadline_at=1), LambdaContext())
    assert wavespeed.submissions == []


def test_the_submit_function_ends_before_poll_stops_waiting_for_it() -> None:
    template = load_template(TEMPLATE)
    submit = template["Resources"]["SubmitFunction"]["Properties"]
    timeout = submit.get("Timeout", template["Globals"]["Function"]["Timeout"])
    assert timeout + 5 <= SUBMIT_MAY_RUN_SECONDS


def test_poll_of_a_submit_whose_prediction_never_showed_ends_outcome_unknown(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks
) -> None:
    job = queued_job(aws, submit_attempt="lost-answer", callback_token="t")
    with pytest.raises(UpstreamOutcomeUnknown, match="not submitted again"):
        load_handler("poll").handler(poll_event(job, deadline_at=1), LambdaContext())
    assert wavespeed.submissions == []
