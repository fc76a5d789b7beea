"""Webhook delivery unit step Deliver: one scheduled retry; exhausted deliveries are dead-lettered."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from maskgate.contracts.steps import DeliverInput, DeliveryStep
from maskgate.errors import Missing
from maskgate.observability import logger, metrics
from maskgate.webhooks.notifier import Throttled
from maskgate.webhooks.schedule import next_wait

if TYPE_CHECKING:
    from maskgate.webhooks.notifier import Notifier


def deliver(step: DeliverInput, *, notifier: Notifier) -> DeliveryStep:
    """One scheduled retry of a delivery unit: delivered, refused, the next wait, or dead-lettered."""
    job = notifier.jobs.get(step.job_id)
    if job.webhook_body is None:
        raise Missing(f"job {job.id} has no webhook to deliver")
    done = DeliveryStep(
        job_id=job.id, event=step.event, step=step.step, endpoint_id=step.endpoint_id, done=True
    )
    target = notifier.target(job, step.endpoint_id)
    if target is None:  # the endpoint was deleted or disabled meanwhile: it gets nothing more
        logger.info(
            "delivery unit ended: its endpoint is gone or disabled", extra={"endpoint_id": step.endpoint_id}
        )
        return done
    result = notifier.attempt(job, job.webhook_body, target)
    if isinstance(result, Throttled):  # the endpoint's turn is later: wait for it, no retry spent
        return DeliveryStep(
            job_id=job.id,
            event=step.event,
            step=step.step,
            endpoint_id=step.endpoint_id,
            wait_seconds=max(1, math.ceil(result.wait_seconds)),
        )
    if result.outcome != "retrying":
        notifier.record(job, result)
        return done
    wait = next_wait(notifier.settings.webhook_schedule, step.step + 1, retry_after=result.retry_after)
    if wait is None:
        notifier.record(job, result.model_copy(update={"outcome": "dead_lettered"}))
        notifier.units.dead_letter(job_id=job.id, event=step.event, webhook_id=result.webhook_id, last=result)
        metrics.add_metric(name="WebhookDeadLettered", unit="Count", value=1)
        return done
    notifier.record_retrying(job, result, wait)
    return DeliveryStep(
        job_id=job.id, event=step.event, step=step.step + 1, endpoint_id=step.endpoint_id, wait_seconds=wait
    )
