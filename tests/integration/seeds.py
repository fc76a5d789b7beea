"""Jobs written straight into the table, and the workflow events that name them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from maskgate import clients
from maskgate.contracts.job import ImageLocation, Job, JobStatus
from maskgate.contracts.prompts import Prompts
from maskgate.ids import new_job_id
from tests.integration.conftest import Aws
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import FakeWaveSpeed, image_bytes

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


def submit_event(job: Job) -> dict[str, Any]:
    return {**event("submit"), "job_id": job.id}


def submitted(aws: Aws, wavespeed: FakeWaveSpeed, status: str) -> tuple[Job, str]:
    wavespeed.next_status = status
    job = queued_job(aws)
    out = load_handler("submit").handler(submit_event(job), LambdaContext())
    return job, out["prediction_id"]
