"""Workflow step Notify: the first attempt of the job's final webhook; a failure starts its delivery unit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maskgate.contracts.steps import JobRef, NotifyOutput
from maskgate.errors import InvalidTransition
from maskgate.webhooks.schedule import next_wait

if TYPE_CHECKING:
    from maskgate.webhooks.notifier import Notifier


def notify(step: JobRef, *, notifier: Notifier) -> NotifyOutput:
    """The first attempt of the job's final webhook; a retryable failure starts its delivery unit."""
    job = notifier.jobs.get(step.job_id)
    if job.webhook_url is None:
        return NotifyOutput(job_id=job.id, outcome="no_webhook")
    if not job.status.terminal:
        raise InvalidTransition(f"job {job.id} is {job.status.value}; only finished jobs are notified")
    api_url = notifier.settings.require("public_api_url")  # the webhook's mask links are built on it
    secrets_ = notifier.tenants.webhook_secrets(job.tenant)  # read once: the body's links and the signature
    body = job.webhook_body or notifier.body(job, api_url=api_url, secrets_=secrets_)
    result = notifier.attempt(job, body, secrets_=secrets_)
    if result.outcome != "retrying":
        notifier.jobs.record_delivery(job.id, result)
        return NotifyOutput(job_id=job.id, outcome=result.outcome)
    wait = next_wait(notifier.settings.webhook_schedule, 0, retry_after=result.retry_after)
    if wait is None:  # an empty schedule: the first attempt was the only one
        notifier.jobs.record_delivery(job.id, result.model_copy(update={"outcome": "gave_up"}))
        return NotifyOutput(job_id=job.id, outcome="gave_up")
    # the unit first: an invocation killed between the two leaves a running unit, never none
    notifier.units.start(name=result.webhook_id, job_id=job.id, event=result.event, step=0, wait_seconds=wait)
    notifier.record_retrying(job, result, wait)
    return NotifyOutput(job_id=job.id, outcome="scheduled")
