"""The on_upload function on moto: an object under uploads/ starts (or fails) one job (its sample event)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from maskgate import clients
from maskgate.contracts.job import JobError, JobStatus
from tests.integration.conftest import Aws
from tests.integration.seeds import WEBHOOK
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import image_bytes


def put_upload(aws: Aws, key: str, body: bytes, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=body, Metadata=metadata or {})
    sample = event("on_upload")
    record = sample["Records"][0]["s3"]
    record["bucket"]["name"] = aws.bucket
    record["object"].update({"key": key.replace(" ", "+"), "size": len(body)})
    return sample


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
