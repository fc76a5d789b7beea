"""Workflow step Notify: the first attempt of the job's final webhook to each of its targets (the
job's webhook_url and every registered endpoint that takes the event), all at once; each failed one
starts its own delivery unit."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from maskgate.contracts.job import DeliveryAttempt, Job
from maskgate.contracts.steps import JobRef, NotifyOutput
from maskgate.errors import InvalidTransition
from maskgate.webhooks.body import event_type
from maskgate.webhooks.notifier import Throttled, unit_name
from maskgate.webhooks.schedule import next_wait

if TYPE_CHECKING:
    from maskgate.webhooks.notifier import Notifier, TenantTargets


def notify(
    step: JobRef, *, notifier: Notifier, job: Job | None = None, read: TenantTargets | None = None
) -> NotifyOutput:
    """The first attempt to every target of the job's final event; a retryable failure starts that
    target's delivery unit. The outcome is the job's own webhook's, else the endpoints' together.

    ``job`` and ``read`` (the tenant's webhook targets): what the step that just finished the job
    already read and wrote, so they are not read again."""
    job = job or notifier.jobs.get(step.job_id)
    if not job.status.terminal:
        if job.webhook_url is None:
            return NotifyOutput(job_id=job.id, outcome="no_webhook")
        raise InvalidTransition(f"job {job.id} is {job.status.value}; only finished jobs are notified")
    # one read: links, signatures, fan-out
    secrets_, targets = notifier.targets(job, event_type(job.status), read=read)
    if not targets:
        return NotifyOutput(job_id=job.id, outcome="no_webhook")
    api_url = notifier.settings.require("public_api_url")  # the webhook's mask links are built on it
    body = job.webhook_body or notifier.body(job, api_url=api_url, secrets_=secrets_)
    followed = [_follow_up(job, result, notifier) for result in notifier.attempts(job, body, targets)]
    notifier.record_all(job, [record for _, record in followed if record is not None])  # one write
    outcomes = [outcome for outcome, _ in followed]
    return NotifyOutput(job_id=job.id, outcome=_summary(outcomes, own=job.webhook_url is not None))


def _follow_up(
    job: Job, result: DeliveryAttempt | Throttled, notifier: Notifier
) -> tuple[str, DeliveryAttempt | None]:
    """One target's first attempt: its outcome and what to record of it. A retryable one gets its
    delivery unit first, and so does a throttled endpoint's (its unit makes the first attempt when the
    endpoint's turn comes; nothing is recorded for it yet)."""
    if isinstance(result, Throttled):
        notifier.units.start(
            name=unit_name(result.webhook_id, result.endpoint_id),
            job_id=job.id,
            event=result.event,
            step=0,
            wait_seconds=math.ceil(result.wait_seconds),
            endpoint_id=result.endpoint_id,
        )
        return "scheduled", None
    if result.outcome != "retrying":
        return result.outcome, result
    wait = next_wait(notifier.settings.webhook_schedule, 0, retry_after=result.retry_after)
    if wait is None:  # an empty schedule: the first attempt was the only one
        return "gave_up", result.model_copy(update={"outcome": "gave_up"})
    # the unit first: an invocation killed before the record leaves a running unit, never none
    notifier.units.start(
        name=unit_name(result.webhook_id, result.endpoint_id),
        job_id=job.id,
        event=result.event,
        step=0,
        wait_seconds=wait,
        endpoint_id=result.endpoint_id,
    )
    return "scheduled", notifier.retrying(result, wait)


def _summary(outcomes: list[str], *, own: bool) -> str:
    """The job's own webhook's outcome (it comes first); for endpoints alone, the one outcome they
    share, else ``mixed``."""
    if own or len(set(outcomes)) == 1:
        return outcomes[0]
    return "mixed"
