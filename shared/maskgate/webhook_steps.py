"""The steps around the caller's webhook: the first attempt (Notify), scheduled retries (Deliver),
redelivery, cancel (which ends in ``segmentation.canceled``) and upload expiry (which ends in a
failed event). Each takes its input and the stores and clients it needs, keyword-only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from maskgate.deliveries import DeliverInput, DeliveryStep, DeliveryUnits, next_wait
from maskgate.errors import Conflict, InvalidTransition, MaskgateError, NotFound
from maskgate.jobs import DeliveryAttempt, Job, JobError, JobStatus, JobStore, utcnow
from maskgate.observability import logger, metrics
from maskgate.settings import Settings
from maskgate.tenants import TenantStore
from maskgate.webhooks import WebhookSender, build_body, event_type, webhook_id
from maskgate.workflow import JobRef, NotifyOutput, Workflow

Clock = Callable[[], datetime]


def notify(
    step: JobRef,
    *,
    jobs: JobStore,
    tenants: TenantStore,
    sender: WebhookSender,
    units: DeliveryUnits,
    settings: Settings,
    now: Clock = utcnow,
) -> NotifyOutput:
    """The first attempt of the job's final webhook; a retryable failure starts its delivery unit."""
    job = jobs.get(step.job_id)
    if job.webhook_url is None:
        return NotifyOutput(job_id=job.id, outcome="no_webhook")
    if not job.status.terminal:
        raise InvalidTransition(f"job {job.id} is {job.status.value}; only finished jobs are notified")
    if not settings.public_api_url:
        raise MaskgateError("MASKGATE_PUBLIC_API_URL is not set: webhook mask links cannot be built")
    secrets_ = tenants.webhook_secrets(job.tenant)
    body = job.webhook_body or jobs.set_webhook_body(
        job.id,
        build_body(
            job,
            api_url=settings.public_api_url,
            secret=secrets_[0],
            now=now(),
            link_seconds=settings.mask_link_seconds,
        ),
    )
    result = attempt_delivery(job, body=body, secrets_=secrets_, sender=sender)
    if result.outcome == "retrying":
        return NotifyOutput(
            job_id=job.id,
            outcome=_schedule(
                job, result, 0, jobs=jobs, units=units, settings=settings, now=now, name=result.webhook_id
            ),
        )
    jobs.record_delivery(job.id, result)
    return NotifyOutput(job_id=job.id, outcome=result.outcome)


def deliver(
    step: DeliverInput,
    *,
    jobs: JobStore,
    tenants: TenantStore,
    sender: WebhookSender,
    units: DeliveryUnits,
    settings: Settings,
    now: Clock = utcnow,
) -> DeliveryStep:
    """One scheduled retry of a delivery unit: delivered, refused, the next wait, or dead-lettered."""
    job = jobs.get(step.job_id)
    if job.webhook_url is None or job.webhook_body is None:
        raise NotFound(f"job {job.id} has no webhook to deliver")
    result = attempt_delivery(
        job, body=job.webhook_body, secrets_=tenants.webhook_secrets(job.tenant), sender=sender
    )
    if result.outcome != "retrying":
        jobs.record_delivery(job.id, result)
        return DeliveryStep(job_id=job.id, event=step.event, step=step.step, done=True)
    wait = next_wait(settings.webhook_schedule, step.step + 1, retry_after=result.retry_after)
    if wait is None:
        jobs.record_delivery(job.id, result.model_copy(update={"outcome": "dead_lettered"}))
        units.dead_letter(job_id=job.id, event=step.event, webhook_id=result.webhook_id, last=result)
        metrics.add_metric(name="WebhookDeadLettered", unit="Count", value=1)
        return DeliveryStep(job_id=job.id, event=step.event, step=step.step, done=True)
    jobs.record_delivery(
        job.id, result.model_copy(update={"next_attempt_at": now() + timedelta(seconds=wait)})
    )
    return DeliveryStep(job_id=job.id, event=step.event, step=step.step + 1, wait_seconds=wait)


def cancel(
    job: Job,
    *,
    jobs: JobStore,
    workflow: Workflow,
    units: DeliveryUnits,
    tenants: TenantStore,
    api_url: str,
    settings: Settings,
    now: Clock = utcnow,
) -> Job:
    """Cancel an unfinished job: mark it canceled (Conflict if it already finished), stop its
    execution, and send ``segmentation.canceled`` through a delivery unit."""
    canceled = jobs.transition(
        job.id, JobStatus.CANCELED, error=JobError(type="canceled", message="canceled by the API client")
    )
    workflow.stop(job.id)
    metrics.add_metric(name="JobCanceled", unit="Count", value=1)
    if canceled.webhook_url is None:
        return canceled
    secret = tenants.webhook_secrets(canceled.tenant)[0]
    jobs.set_webhook_body(
        canceled.id,
        build_body(
            canceled, api_url=api_url, secret=secret, now=now(), link_seconds=settings.mask_link_seconds
        ),
    )
    event = event_type(canceled.status)
    units.start(name=webhook_id(canceled.id, event), job_id=canceled.id, event=event, step=0, wait_seconds=0)
    return canceled


def expire_upload(
    step: JobRef,
    *,
    jobs: JobStore,
    tenants: TenantStore,
    sender: WebhookSender,
    units: DeliveryUnits,
    settings: Settings,
) -> NotifyOutput:
    """A registered upload's time is up: fail the job as upload_expired if it still waits, and notify."""
    error = JobError(
        type="upload_expired", message="the image was not uploaded before the upload URL expired"
    )
    try:
        jobs.transition(step.job_id, JobStatus.FAILED, only_from=JobStatus.AWAITING_UPLOAD, error=error)
    except InvalidTransition:
        return NotifyOutput(job_id=step.job_id, outcome="uploaded")
    metrics.add_metric(name="UploadExpired", unit="Count", value=1)
    return notify(step, jobs=jobs, tenants=tenants, sender=sender, units=units, settings=settings)


def redeliver(job: Job, *, units: DeliveryUnits) -> str:
    """Send the job's final webhook again now, with the same webhook-id and body; return the id."""
    if job.webhook_url is None or job.webhook_body is None or not job.status.terminal:
        raise Conflict(f"job {job.id} has no final webhook to redeliver")
    event = event_type(job.status)
    msg_id = webhook_id(job.id, event)
    units.start(
        name=f"{msg_id}-r{len(job.deliveries) + 1}", job_id=job.id, event=event, step=0, wait_seconds=0
    )
    return msg_id


def attempt_delivery(job: Job, *, body: str, secrets_: list[str], sender: WebhookSender) -> DeliveryAttempt:
    """One signed attempt of the job's final event, numbered after the ones recorded before it."""
    event = event_type(job.status)
    number = 1 + sum(1 for d in job.deliveries if d.event == event)
    result = sender.send(
        str(job.webhook_url),
        msg_id=webhook_id(job.id, event),
        body=body,
        secrets_=secrets_,
        event=event,
        attempt=number,
    )
    logger.info("webhook attempt", extra={"outcome": result.outcome, "status_code": result.status_code})
    if result.outcome == "delivered":
        metrics.add_metric(name="WebhookDelivered", unit="Count", value=1)
    return result


def _schedule(
    job: Job,
    result: DeliveryAttempt,
    step: int,
    *,
    jobs: JobStore,
    units: DeliveryUnits,
    settings: Settings,
    now: Clock,
    name: str,
) -> str:
    wait = next_wait(settings.webhook_schedule, step, retry_after=result.retry_after)
    if wait is None:
        jobs.record_delivery(job.id, result.model_copy(update={"outcome": "gave_up"}))
        return "gave_up"
    jobs.record_delivery(
        job.id, result.model_copy(update={"next_attempt_at": now() + timedelta(seconds=wait)})
    )
    units.start(name=name, job_id=job.id, event=result.event, step=step, wait_seconds=wait)
    return "scheduled"
