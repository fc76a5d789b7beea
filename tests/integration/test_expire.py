"""The expire step on moto: a registered upload that never came fails upload_expired and is notified."""

from __future__ import annotations

import json
from typing import Any

from standardwebhooks import Webhook

from maskgate import clients
from maskgate.contracts.job import JobStatus
from tests.integration.conftest import Aws
from tests.integration.test_uploads import register, uploaded
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import Receiver, image_bytes


def test_expire_fails_a_job_still_waiting_and_notifies(api: Any, aws: Aws, receiver: Receiver) -> None:
    job = json.loads(register(api, aws)["body"])
    out = load_handler("expire").handler({**event("expire"), "job_id": job["id"]}, LambdaContext())
    assert out["outcome"] == "delivered"
    stored = clients.job_store().get(job["id"])
    assert stored.error is not None and stored.error.type == "upload_expired"
    [request] = receiver.requests
    payload = Webhook(aws.secret).verify(request.content, dict(request.headers))
    assert payload["type"] == "segmentation.failed"
    assert payload["data"]["error"]["type"] == "upload_expired"


def test_expire_after_the_upload_arrived_changes_nothing(api: Any, aws: Aws, receiver: Receiver) -> None:
    job = json.loads(register(api, aws)["body"])
    uploaded(aws, job["upload"]["fields"]["key"], image_bytes())
    out = load_handler("expire").handler({"job_id": job["id"]}, LambdaContext())
    assert out["outcome"] == "uploaded"
    assert clients.job_store().get(job["id"]).status is JobStatus.QUEUED
    assert receiver.requests == []
