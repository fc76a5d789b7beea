"""Upload expiry step Expire: a registered upload never came; fail its job (upload_expired) and notify."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maskgate.contracts.job import JobError, JobStatus
from maskgate.contracts.steps import JobRef, NotifyOutput
from maskgate.errors import InvalidTransition
from maskgate.observability import metrics
from maskgate.steps.notify import notify

if TYPE_CHECKING:
    from maskgate.webhooks.notifier import Notifier


def expire(step: JobRef, *, notifier: Notifier) -> NotifyOutput:
    """A registered upload's time is up: fail the job as upload_expired if it still waits, and notify."""
    error = JobError(
        type="upload_expired", message="the image was not uploaded before the upload URL expired"
    )
    try:
        notifier.jobs.transition(
            step.job_id, JobStatus.FAILED, only_from=JobStatus.AWAITING_UPLOAD, error=error
        )
    except InvalidTransition:
        return NotifyOutput(job_id=step.job_id, outcome="uploaded")
    metrics.add_metric(name="UploadExpired", unit="Count", value=1)
    return notify(step, notifier=notifier)
