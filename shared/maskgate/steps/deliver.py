"""Webhook delivery unit step Deliver: one scheduled retry; exhausted deliveries are dead-lettered."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from maskgate.contracts.job import DeliveryAttempt
from maskgate.contracts.steps import DeliverInput, DeliveryStep
from maskgate.errors import Missing
from maskgate.observability import logger, metrics
from maskgate.webhooks.notifier import Throttled
from maskgate.webhooks.schedule import next_wait

if TYPE_CHECKING:
    from collections.abc import Callable

    from maskgate.webhooks.notifier import Notifier, Target


def deliver(step: DeliverInput, *, notifier: Notifier) -> DeliveryStep:
    """One scheduled retry of a delivery unit: delivered, refused, the next wait, or dead-lettered."""
    if step.message_id is not None:
        return _deliver_event(step, notifier=notifier)
    assert step.job_id is not None  # noqa: S101 (DeliverInput holds one of the two)
    job = notifier.jobs.get(step.job_id)
    if job.webhook_body is None:
        raise Missing(f"job {job.id} has no webhook to deliver")
    target = notifier.target(job, step.endpoint_id)
    return _attempt(
        step,
        target,
        lambda found: notifier.attempt(job, job.webhook_body or "", found),
        lambda result: notifier.record(job, result),
        notifier=notifier,
    )


def _deliver_event(step: DeliverInput, *, notifier: Notifier) -> DeliveryStep:
    """A tenant event's retry (``endpoint.disabled``), its bytes and target read again."""
    assert step.message_id is not None and step.endpoint_id is not None  # noqa: S101 (DeliverInput)
    event = notifier.events.get(step.message_id)
    target = notifier.event_target(event, step.endpoint_id)
    return _attempt(
        step,
        target,
        lambda found: notifier.send(
            found, msg_id=event.webhook_id, body=event.body, event=event.type, number=step.step + 2
        ),
        lambda result: notifier.record_event(event, result),
        notifier=notifier,
    )


def _attempt(
    step: DeliverInput,
    target: Target | None,
    attempt: Callable[[Target], DeliveryAttempt | Throttled],
    record: Callable[[DeliveryAttempt], None],
    *,
    notifier: Notifier,
) -> DeliveryStep:
    unit = step.model_dump()
    done = DeliveryStep(**unit, done=True)
    if target is None:  # the endpoint was deleted or disabled meanwhile: it gets nothing more
        logger.info(
            "delivery unit ended: its endpoint is gone or disabled", extra={"endpoint_id": step.endpoint_id}
        )
        return done
    result = attempt(target)
    if isinstance(result, Throttled):  # the endpoint's turn is later: wait for it, no retry spent
        return DeliveryStep(**unit, wait_seconds=max(1, math.ceil(result.wait_seconds)))
    if result.outcome != "retrying":
        record(result)
        return done
    wait = next_wait(notifier.settings.webhook_schedule, step.step + 1, retry_after=result.retry_after)
    if wait is None:
        record(result.model_copy(update={"outcome": "dead_lettered"}))
        notifier.units.dead_letter(
            job_id=step.job_id, event=step.event, webhook_id=result.webhook_id, last=result
        )
        metrics.add_metric(name="WebhookDeadLettered", unit="Count", value=1)
        return done
    record(notifier.retrying(result, wait))
    return DeliveryStep(**(unit | {"step": step.step + 1}), wait_seconds=wait)
