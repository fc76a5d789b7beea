"""The on_upload and workflow step functions on moto, each fed its sample event from events/."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook

from maskgate import clients
from maskgate.contracts.job import ImageLocation, Job, JobError, JobStatus
from maskgate.contracts.prompts import Prompts
from maskgate.errors import (
    JobRejected,
    NotSubmitted,
    OutputInvalid,
    PredictionTimedOut,
    UpstreamFailed,
    UpstreamOutcomeUnknown,
    UpstreamRateLimited,
    UpstreamRejected,
)
from maskgate.ids import new_job_id
from tests.integration.conftest import Aws, FakeTasks
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import FakeWaveSpeed, Receiver, image_bytes

WEBHOOK = "http://127.0.0.1:8765/hooks"


def queued_job(aws: Aws, *, status: JobStatus = JobStatus.QUEUED, **fields: Any) -> Job:
    now = datetime.now(UTC)
    job_id = new_job_id(now)
    key = f"inputs/{job_id}/image.png"
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=image_bytes())
    values: dict[str, Any] = {
        "id": job_id,
        "tenant": aws.tenant,
        "status": status,
        "source": "api",
        "request": Prompts(prompt="the square", webhook_url=WEBHOOK, metadata={"order": "7"}),
        "webhook_url": WEBHOOK,
        "image": ImageLocation(bucket=aws.bucket, key=key, width=64, height=48),
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    job = Job(**values)
    assert clients.job_store().create(job)
    return job


def put_upload(aws: Aws, key: str, body: bytes, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=body, Metadata=metadata or {})
    sample = event("on_upload")
    record = sample["Records"][0]["s3"]
    record["bucket"]["name"] = aws.bucket
    record["object"].update({"key": key.replace(" ", "+"), "size": len(body)})
    return sample


# on_upload --------------------------------------------------------------------------------------


def test_on_upload_sample_event_starts_a_queued_job(aws: Aws) -> None:
    meta = {"maskgate": json.dumps({"prompt": "the red square", "webhook_url": WEBHOOK})}
    sample = put_upload(aws, "uploads/my cat é.png", image_bytes(), meta)
    sample["Records"][0]["s3"]["object"]["key"] = "uploads/my+cat+%C3%A9.png"
    result = load_handler("on_upload").handler(sample, LambdaContext())
    [found] = result["jobs"]
    job = clients.job_store().get(found["id"])
    # the job points at the validated copy, not at the upload's key (which may be written again)
    assert (job.status, job.image and job.image.key) == (JobStatus.QUEUED, f"inputs/{job.id}/image.png")
    copy = aws.client("s3").get_object(Bucket=aws.bucket, Key=f"inputs/{job.id}/image.png")
    assert (copy["Body"].read(), copy["ContentType"]) == (image_bytes(), "image/png")
    assert job.request is not None and job.request.prompt == "the red square"
    assert aws.executions() == [job.id]


def test_on_upload_redelivered_event_makes_no_second_job(aws: Aws) -> None:
    sample = put_upload(aws, "uploads/a.png", image_bytes(), {"maskgate": json.dumps({"prompt": "x"})})
    handler = load_handler("on_upload").handler
    first = handler(sample, LambdaContext())["jobs"][0]["id"]
    second = handler(sample, LambdaContext())["jobs"][0]["id"]
    assert first == second
    assert aws.executions() == [first]


def test_on_upload_non_image_is_failed_invalid_image_and_still_notified(aws: Aws) -> None:
    meta = {"maskgate": json.dumps({"prompt": "x", "webhook_url": WEBHOOK})}
    sample = put_upload(aws, "uploads/notes.png", b"just some text", meta)
    job_id = load_handler("on_upload").handler(sample, LambdaContext())["jobs"][0]["id"]
    job = clients.job_store().get(job_id)
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.type == "invalid_image"
    assert job.webhook_url == WEBHOOK
    assert aws.executions() == [job_id]


def test_on_upload_without_request_is_failed_missing_prompt(aws: Aws) -> None:
    sample = put_upload(aws, "uploads/bare.png", image_bytes())
    job_id = load_handler("on_upload").handler(sample, LambdaContext())["jobs"][0]["id"]
    job = clients.job_store().get(job_id)
    assert job.error is not None and job.error.type == "missing_prompt"


def test_on_upload_bad_metadata_json_is_failed_invalid_request(aws: Aws) -> None:
    sample = put_upload(aws, "uploads/bad.png", image_bytes(), {"maskgate": "{prompt"})
    job_id = load_handler("on_upload").handler(sample, LambdaContext())["jobs"][0]["id"]
    assert clients.job_store().get(job_id).error == JobError(
        type="invalid_request", message="the 'maskgate' object metadata is not valid JSON"
    )


def test_on_upload_skips_a_record_that_is_not_s3_without_failing_the_event(aws: Aws) -> None:
    sample = put_upload(aws, "uploads/a.png", image_bytes(), {"maskgate": json.dumps({"prompt": "x"})})
    sample["Records"].insert(0, {"eventSource": "aws:sqs"})
    result = load_handler("on_upload").handler(sample, LambdaContext())
    [found] = result["jobs"]  # the S3 record still makes its job; the other is logged and skipped
    assert aws.executions() == [found["id"]]


def test_on_upload_refuses_an_event_without_records_or_test_event_shape(aws: Aws) -> None:
    with pytest.raises(Exception, match="Records"):
        load_handler("on_upload").handler({"Records": "not a list"}, LambdaContext())


# submit -----------------------------------------------------------------------------------------


def submit_event(job: Job) -> dict[str, Any]:
    return {**event("submit"), "job_id": job.id}


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


def test_submit_job_failed_at_intake_raises_job_rejected(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    job = queued_job(aws, status=JobStatus.FAILED, error=JobError(type="invalid_image", message="no"))
    with pytest.raises(JobRejected):
        load_handler("submit").handler(submit_event(job), LambdaContext())
    assert wavespeed.submissions == []


# poll -------------------------------------------------------------------------------------------


def submitted(aws: Aws, wavespeed: FakeWaveSpeed, status: str) -> tuple[Job, str]:
    wavespeed.next_status = status
    job = queued_job(aws)
    out = load_handler("submit").handler(submit_event(job), LambdaContext())
    return job, out["prediction_id"]


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


def test_poll_of_a_submit_whose_prediction_never_showed_ends_outcome_unknown(
    aws: Aws, wavespeed: FakeWaveSpeed, tasks: FakeTasks
) -> None:
    job = queued_job(aws, submit_attempt="lost-answer", callback_token="t")
    with pytest.raises(UpstreamOutcomeUnknown, match="not submitted again"):
        load_handler("poll").handler(poll_event(job, deadline_at=1), LambdaContext())
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


# store ------------------------------------------------------------------------------------------


def test_store_copies_masks_succeeds_and_sends_the_webhook(
    aws: Aws, wavespeed: FakeWaveSpeed, receiver: Receiver
) -> None:
    job, pid = submitted(aws, wavespeed, "completed")
    out = load_handler("store").handler(
        {**event("store"), "job_id": job.id, "prediction_id": pid}, LambdaContext()
    )
    stored = clients.job_store().get(job.id)
    assert out == {"job_id": job.id, "masks": 1, "webhook": "delivered"}
    assert stored.status is JobStatus.SUCCEEDED
    [request] = receiver.requests
    payload = Webhook(aws.secret).verify(request.content, dict(request.headers))
    assert payload["type"] == "segmentation.succeeded" and len(payload["data"]["masks"]) == 1
    assert [d.outcome for d in stored.deliveries] == ["delivered"]
    [mask] = stored.masks
    assert mask.key == f"results/{job.id}/mask_0.png" and (mask.width, mask.height) == (64, 48)
    body = aws.client("s3").get_object(Bucket=aws.bucket, Key=mask.key)["Body"].read()
    assert body == image_bytes("png")


def test_store_output_in_the_wrong_format_is_output_invalid(aws: Aws, wavespeed: FakeWaveSpeed) -> None:
    wavespeed.output_format = "jpeg"
    job, pid = submitted(aws, wavespeed, "completed")
    with pytest.raises(OutputInvalid, match="png was asked for"):
        load_handler("store").handler({"job_id": job.id, "prediction_id": pid}, LambdaContext())


# fail -------------------------------------------------------------------------------------------


def test_fail_sample_event_records_the_typed_error(aws: Aws) -> None:
    job = queued_job(aws)
    load_handler("fail").handler({**event("fail"), "job_id": job.id}, LambdaContext())
    stored = clients.job_store().get(job.id)
    assert stored.status is JobStatus.FAILED
    assert stored.error == JobError(
        type="upstream_failed", message="the prediction failed: image could not be decoded"
    )


def test_fail_leaves_a_finished_job_alone(aws: Aws) -> None:
    job = queued_job(aws, status=JobStatus.SUCCEEDED)
    load_handler("fail").handler({**event("fail"), "job_id": job.id}, LambdaContext())
    assert clients.job_store().get(job.id).status is JobStatus.SUCCEEDED


# notify -----------------------------------------------------------------------------------------


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


def test_notify_receiver_4xx_gives_up_without_raising(aws: Aws, receiver: Receiver) -> None:
    receiver.status = 410
    job = queued_job(aws, status=JobStatus.SUCCEEDED)
    assert load_handler("notify").handler({"job_id": job.id}, LambdaContext())["outcome"] == "gave_up"


def test_notify_without_webhook_url_sends_nothing(aws: Aws, receiver: Receiver) -> None:
    job = queued_job(aws, status=JobStatus.SUCCEEDED, request=Prompts(prompt="the square"), webhook_url=None)
    assert load_handler("notify").handler({"job_id": job.id}, LambdaContext())["outcome"] == "no_webhook"
    assert receiver.requests == []
