"""At most one paid submission per job, no paid result thrown away, no slot leaked: each step crashed
at its named points (maskgate.crashpoints), re-run as the workflow's Retry would, and raced."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from maskgate import clients, crashpoints
from maskgate.contracts.job import Job, JobStatus
from maskgate.errors import JobNotSubmittable, PredictionNotReady, UpstreamRateLimited
from maskgate.steps.cancel import cancel
from tests.integration.conftest import Aws, FakeTasks
from tests.integration.seeds import queued_job, submit_event
from tests.integration.test_callback import SECRET, callback
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import FakeWaveSpeed, Receiver


class Crash(BaseException):
    """What the runtime does to an invocation: nothing after this point runs."""


@pytest.fixture
def crash_at() -> Iterator[set[str]]:
    points: set[str] = set()

    def hook(point: str) -> None:
        if point in points:
            points.discard(point)  # once: the retry runs through
            raise Crash(point)

    crashpoints.install(hook)
    yield points
    crashpoints.install(None)


@pytest.fixture
def api(aws: Aws, tasks: FakeTasks, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(clients, "wavespeed_webhook_secret", lambda: SECRET)
    return load_handler("api")


def run_submit(job: Job, token: str = "submit-token") -> dict[str, Any]:
    out: dict[str, Any] = load_handler("submit").handler(
        {**submit_event(job), "task_token": token}, LambdaContext()
    )
    return out


def callback_for(job_id: str, prediction: str, *, msg_id: str = "msg_1", status: str = "completed") -> Any:
    token = clients.job_store().get(job_id).callback_token or ""
    return callback(job_id, prediction=prediction, msg_id=msg_id, status=status, token=token)


def test_submit_crashed_after_the_post_never_submits_again_and_adopts_from_the_callback(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks, api: Any, crash_at: set[str]
) -> None:
    # given a Submit that dies right after WaveSpeed accepted
    job = queued_job(aws)
    crash_at.add("submit.after_post")
    with pytest.raises(Crash):
        run_submit(job)
    stored = clients.job_store().get(job.id)
    assert (stored.prediction_id, stored.submit_attempt is not None) == (None, True)
    # when the workflow retries it
    out = run_submit(job, token="retry-token")
    # then nothing is submitted again, and the prediction's callback is adopted and resumes the task
    assert len(wavespeed.submissions) == 1 and out["prediction_id"] is None
    [prediction] = wavespeed.predictions
    response = api.handler(callback_for(job.id, prediction), LambdaContext())
    assert json.loads(response["body"]) == {"outcome": "resumed"}
    assert clients.job_store().get(job.id).prediction_id == prediction
    assert tasks.calls == [("success", "retry-token", {"job_id": job.id, "prediction_id": prediction})]


def test_submit_crashed_after_recording_is_a_no_op_when_retried(
    aws: Aws, wavespeed: FakeWaveSpeed, crash_at: set[str]
) -> None:
    job = queued_job(aws)
    crash_at.add("submit.after_record")
    with pytest.raises(Crash):
        run_submit(job)
    out = run_submit(job, token="retry-token")
    assert len(wavespeed.submissions) == 1
    assert out["prediction_id"] == clients.job_store().get(job.id).prediction_id is not None


def test_submit_that_surely_did_not_land_takes_its_intent_back_so_the_next_one_submits(
    aws: Aws, wavespeed: FakeWaveSpeed
) -> None:
    job = queued_job(aws)
    wavespeed.submit_status = 429
    with pytest.raises(UpstreamRateLimited):
        run_submit(job)
    assert clients.job_store().get(job.id).submit_attempt is None
    wavespeed.submit_status = 200
    run_submit(job, token="retry-token")
    assert len(wavespeed.submissions) == 1
    assert clients.job_store().get(job.id).status is JobStatus.SUBMITTED


def test_submit_whose_answer_is_lost_keeps_its_intent_and_waits(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    job = queued_job(aws)
    wavespeed.submit_status = 500  # may have landed: never retried, never failed
    out = run_submit(job)
    stored = clients.job_store().get(job.id)
    assert out["prediction_id"] is None
    assert (stored.status, stored.submit_attempt is not None, stored.error) == (JobStatus.QUEUED, True, None)


def test_submit_of_a_job_canceled_after_admission_pays_nothing_and_gives_the_slot_back(
    aws: Aws, wavespeed: FakeWaveSpeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = queued_job(aws)
    admission = clients.admission()
    real_admit = admission.admit

    def admit_then_cancel(job_id: str, *, tenant: str) -> None:
        real_admit(job_id, tenant=tenant)
        clients.job_store().transition(job_id, JobStatus.CANCELED)  # the cancel lands here

    monkeypatch.setattr(admission, "admit", admit_then_cancel)
    with pytest.raises(JobNotSubmittable):
        run_submit(job)
    assert wavespeed.submissions == []
    assert job.id not in admission.in_flight()


def test_callback_replayed_to_another_jobs_url_resumes_nothing(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks, api: Any
) -> None:
    first, second = queued_job(aws), queued_job(aws)
    run_submit(first)
    run_submit(second)
    [prediction, _] = wavespeed.predictions
    foreign = callback(
        second.id, prediction=prediction, token=clients.job_store().get(first.id).callback_token or ""
    )
    response = api.handler(foreign, LambdaContext())
    assert response["statusCode"] == 404 and tasks.calls == []


def test_callback_without_its_jobs_token_is_refused(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks, api: Any
) -> None:
    job = queued_job(aws)
    run_submit(job)
    [prediction] = wavespeed.predictions
    response = api.handler(callback(job.id, prediction=prediction, token="guessed"), LambdaContext())
    assert response["statusCode"] == 404 and tasks.calls == []


def test_callback_whose_action_failed_is_acted_on_when_retried(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = queued_job(aws)
    run_submit(job)
    [prediction] = wavespeed.predictions
    workflow = clients.workflow()
    real_resume = workflow.resume
    monkeypatch.setattr(workflow, "resume", lambda *a: (_ for _ in ()).throw(RuntimeError("throttled")))
    assert api.handler(callback_for(job.id, prediction), LambdaContext())["statusCode"] == 500
    monkeypatch.setattr(workflow, "resume", real_resume)
    response = api.handler(callback_for(job.id, prediction), LambdaContext())  # WaveSpeed retries, same id
    assert json.loads(response["body"]) == {"outcome": "resumed"}
    replay = api.handler(callback_for(job.id, prediction), LambdaContext())
    assert json.loads(replay["body"]) == {"outcome": "duplicate"}


def test_store_reading_a_lagging_result_raises_retryable_not_failed(
    aws: Aws, wavespeed: FakeWaveSpeed
) -> None:
    wavespeed.next_status = "processing"
    job = queued_job(aws)
    pid = run_submit(job)["prediction_id"]
    with pytest.raises(PredictionNotReady):
        load_handler("store").handler({"job_id": job.id, "prediction_id": pid}, LambdaContext())
    assert clients.job_store().get(job.id).status is JobStatus.SUBMITTED


@pytest.mark.parametrize("point", ["store.after_masks", "store.after_succeeded"])
def test_store_crashed_after_its_side_effect_succeeds_when_retried_with_one_webhook(
    aws: Aws, wavespeed: FakeWaveSpeed, receiver: Receiver, crash_at: set[str], point: str
) -> None:
    job = queued_job(aws)
    pid = run_submit(job)["prediction_id"]
    crash_at.add(point)
    store = load_handler("store").handler
    with pytest.raises(Crash):
        store({**event("store"), "job_id": job.id, "prediction_id": pid}, LambdaContext())
    out = store({**event("store"), "job_id": job.id, "prediction_id": pid}, LambdaContext())
    stored = clients.job_store().get(job.id)
    assert (stored.status, len(stored.masks), out["webhook"]) == (JobStatus.SUCCEEDED, 1, "delivered")
    assert {r.headers["webhook-id"] for r in receiver.requests} == {f"msg_{job.id[4:]}_succeeded"}
    assert stored.webhook_pending is None


def test_cancel_before_any_prediction_gives_the_slot_back(
    aws: Aws, wavespeed: FakeWaveSpeed, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = queued_job(aws)
    clients.admission().admit(job.id, tenant=job.tenant)
    canceled = cancel(
        job,
        notifier=clients.notifier(),
        workflow=clients.workflow(),
        admission=clients.admission(),
        api_url="http://127.0.0.1:3000",
    )
    assert canceled.status is JobStatus.CANCELED
    assert job.id not in clients.admission().in_flight()
