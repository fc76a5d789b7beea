"""The fail step on moto: a caught workflow error recorded as the job's typed failure."""

from __future__ import annotations

from maskgate import clients
from maskgate.contracts.job import JobError, JobStatus
from tests.integration.conftest import Aws
from tests.integration.seeds import queued_job
from tests.support.artefacts import LambdaContext, event, load_handler


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
