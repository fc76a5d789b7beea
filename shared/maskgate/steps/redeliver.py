"""``POST /v1/segmentations/{id}/deliveries``: send a finished job's webhook again, through a new unit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maskgate.contracts.job import Job
from maskgate.errors import Conflict
from maskgate.webhooks.body import event_type, webhook_id

if TYPE_CHECKING:
    from maskgate.webhooks.notifier import Notifier


def redeliver(job: Job, *, notifier: Notifier) -> str:
    """Send the job's final webhook again now, with the same webhook-id and body; return the id."""
    if job.webhook_url is None or job.webhook_body is None or not job.status.terminal:
        raise Conflict(f"job {job.id} has no final webhook to redeliver")
    event = event_type(job.status)
    msg_id = webhook_id(job.id, event)
    name = f"{msg_id}-r{len(job.deliveries) + 1}"
    notifier.units.start(name=name, job_id=job.id, event=event, step=0, wait_seconds=0)
    return msg_id
