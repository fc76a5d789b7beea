"""``DELETE /v1/segmentations/{id}``: cancel an unfinished job and tell its webhook."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maskgate.contracts.job import Job, JobError, JobStatus
from maskgate.observability import metrics
from maskgate.webhooks.body import event_type, webhook_id
from maskgate.webhooks.notifier import unit_name

if TYPE_CHECKING:
    from maskgate.stores.admission import Admission
    from maskgate.webhooks.notifier import Notifier
    from maskgate.workflow.executions import Workflow


def cancel(job: Job, *, notifier: Notifier, workflow: Workflow, admission: Admission, api_url: str) -> Job:
    """Cancel an unfinished job: mark it canceled (InvalidTransition if it already finished), stop
    its execution, and send ``segmentation.canceled`` through a delivery unit."""
    error = JobError(type="canceled", message="canceled by the API client")
    canceled = notifier.jobs.transition(job.id, JobStatus.CANCELED, error=error)
    workflow.stop(job.id, execution=canceled.execution)
    # the stopped execution runs no Store or Fail to give the slot back; WaveSpeed cannot
    # cancel a prediction, and one under way is no longer ours to wait for
    admission.release(job.id)
    metrics.add_metric(name="JobCanceled", unit="Count", value=1)
    event = event_type(canceled.status)
    secrets_, targets = notifier.targets(canceled, event)
    if targets:
        notifier.body(canceled, api_url=api_url, secrets_=secrets_)
    for target in targets:
        notifier.units.start(
            name=unit_name(webhook_id(canceled.id, event), target.endpoint_id),
            job_id=canceled.id,
            event=event,
            step=0,
            wait_seconds=0,
            endpoint_id=target.endpoint_id,
        )
    return canceled
