"""``POST /v1/segmentations/{id}/deliveries``: send a finished job's webhook again, through a new unit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maskgate.contracts.job import Job
from maskgate.errors import Conflict
from maskgate.webhooks.body import event_type, webhook_id
from maskgate.webhooks.notifier import unit_name

if TYPE_CHECKING:
    from maskgate.webhooks.notifier import Notifier


def redeliver(job: Job, *, notifier: Notifier) -> str:
    """Send the job's final webhook again now to each of its targets, with the same webhook-id and
    body, through a new delivery unit per target; return the id."""
    event = event_type(job.status)
    targets = notifier.targets(job, event)[1] if job.status.terminal else []
    if job.webhook_body is None or not targets:
        raise Conflict(f"job {job.id} has no final webhook to redeliver")
    msg_id = webhook_id(job.id, event)
    for target in targets:
        name = f"{unit_name(msg_id, target.endpoint_id)}-r{len(job.deliveries) + 1}"
        notifier.units.start(
            name=name, job_id=job.id, event=event, step=0, wait_seconds=0, endpoint_id=target.endpoint_id
        )
    return msg_id
