"""Direct uploads on moto: POST /v1/uploads registers a job, the S3 event for its key starts it,
and a registration whose image never comes expires (upload_expired) and is notified."""

from __future__ import annotations

import json
import os
from typing import Any

from maskgate import clients
from maskgate.contracts.job import JobStatus
from tests.integration.conftest import Aws, problem
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import Receiver, image_bytes

WEBHOOK = "http://127.0.0.1:8765/hooks"


def register(api: Any, aws: Aws, body: dict[str, Any] | None = None) -> dict[str, Any]:
    sample = event("api_create_segmentation")
    sample["routeKey"] = "POST /v1/uploads"
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = "/v1/uploads"
    sample["headers"]["authorization"] = f"Bearer {aws.api_key}"
    payload = body or {
        "filename": "my cat é.png",
        "content_type": "image/png",
        "box_prompts": [{"x_min": 1, "y_min": 1, "x_max": 20, "y_max": 20}],
        "webhook_url": WEBHOOK,
    }
    sample["body"] = json.dumps(payload)
    sample["headers"]["content-length"] = str(len(sample["body"]))
    return dict(api.handler(sample, LambdaContext()))


def uploaded(aws: Aws, key: str, body: bytes) -> dict[str, Any]:
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=body)
    sample = event("on_upload")
    record = sample["Records"][0]["s3"]
    record["bucket"]["name"] = aws.bucket
    record["object"].update({"key": key.replace(" ", "+"), "size": len(body)})
    return dict(load_handler("on_upload").handler(sample, LambdaContext()))


def test_register_returns_a_presigned_post_for_the_tenants_key(api: Any, aws: Aws) -> None:
    response = register(api, aws)
    assert response["statusCode"] == 201
    job = json.loads(response["body"])
    assert job["status"] == "awaiting_upload"
    key = f"uploads/{aws.tenant}/{job['id']}/image"  # chosen by the server; the filename is data
    assert job["upload"]["fields"]["key"] == key
    assert clients.job_store().get(job["id"]).image.filename == "my cat é.png"  # type: ignore[union-attr]
    assert job["upload"]["fields"]["Content-Type"] == "image/png"
    policy = json.loads(__import__("base64").b64decode(job["upload"]["fields"]["policy"]))
    assert ["content-length-range", 1, 20 * 1024 * 1024] in policy["conditions"]
    assert {"key": key} in policy["conditions"]  # an exact key, never a prefix
    sfn = aws.client("stepfunctions")
    runs = sfn.list_executions(stateMachineArn=os.environ["MASKGATE_UPLOAD_EXPIRY_STATE_MACHINE_ARN"])
    assert [r["name"] for r in runs["executions"]] == [job["id"]]


def test_register_refuses_a_filename_with_a_slash(api: Any, aws: Aws) -> None:
    response = register(api, aws, {"filename": "../x.png", "content_type": "image/png", "prompt": "x"})
    assert response["statusCode"] == 422 and problem(response)["errors"][0]["loc"] == "filename"


def test_the_upload_starts_the_registered_job(api: Any, aws: Aws) -> None:
    job = json.loads(register(api, aws)["body"])
    result = uploaded(aws, job["upload"]["fields"]["key"], image_bytes())
    assert result["jobs"] == [{"id": job["id"], "status": "queued"}]
    stored = clients.job_store().get(job["id"])
    assert stored.image is not None and (stored.image.width, stored.image.height) == (64, 48)
    assert aws.executions() == [job["id"]]


def test_a_registered_upload_that_is_not_an_image_fails_invalid_image(api: Any, aws: Aws) -> None:
    job = json.loads(register(api, aws)["body"])
    uploaded(aws, job["upload"]["fields"]["key"], b"not an image")
    stored = clients.job_store().get(job["id"])
    assert stored.status is JobStatus.FAILED and stored.error is not None
    assert stored.error.type == "invalid_image"
    assert aws.executions() == [job["id"]]  # the workflow notifies the failure


def test_an_upload_after_expiry_starts_nothing(api: Any, aws: Aws, receiver: Receiver) -> None:
    job = json.loads(register(api, aws)["body"])
    load_handler("expire").handler({"job_id": job["id"]}, LambdaContext())
    uploaded(aws, job["upload"]["fields"]["key"], image_bytes())
    assert clients.job_store().get(job["id"]).error.type == "upload_expired"  # type: ignore[union-attr]
    assert aws.executions() == []
