"""The steps around the caller's webhook, on one ``Notifier``: the first attempt (Notify), scheduled
retries (Deliver), redelivery, cancel (which ends in ``segmentation.canceled``) and upload expiry
(which ends in a failed event)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from maskgate import crashpoints
from maskgate.contracts.job import DeliveryAttempt, Job, JobError, JobStatus, utcnow
from maskgate.contracts.steps import DeliverInput, DeliveryStep, JobRef, NotifyOutput
from maskgate.errors import Conflict, InvalidTransition, MaskgateError, NotFound
from maskgate.observability import logger, metrics
from maskgate.settings import Settings
from maskgate.stores.admission import Admission
from maskgate.stores.jobs import JobStore
from maskgate.stores.tenants import TenantStore
from maskgate.webhooks.body import build_body, event_type, webhook_id
from maskgate.webhooks.schedule import next_wait
from maskgate.webhooks.sender import WebhookSender
from maskgate.webhooks.units import DeliveryUnits
from maskgate.workflow.executions import Workflow


@dataclass(frozen=True)
class Notifier:
    jobs: JobStore
    tenants: TenantStore
    sender: WebhookSender
    units: DeliveryUnits
    settings: Settings
    admission: Admission | None = None
    now: Callable[[], datetime] = utcnow

    def notify(self, step: JobRef) -> NotifyOutput:
        """The first attempt of the job's final webhook; a retryable failure starts its delivery unit."""
        job = self.jobs.get(step.job_id)
        if job.webhook_url is None:
            return NotifyOutput(job_id=job.id, outcome="no_webhook")
        if not job.status.terminal:
            raise InvalidTransition(f"job {job.id} is {job.status.value}; only finished jobs are notified")
        if not self.settings.public_api_url:
            raise MaskgateError("MASKGATE_PUBLIC_API_URL is not set: webhook mask links cannot be built")
        secrets_ = self.tenants.webhook_secrets(job.tenant)  # read once: the body's links and the signature
        body = job.webhook_body or self._body(job, api_url=self.settings.public_api_url, secrets_=secrets_)
        result = self._attempt(job, body, secrets_=secrets_)
        if result.outcome != "retrying":
            self.jobs.record_delivery(job.id, result)
            return NotifyOutput(job_id=job.id, outcome=result.outcome)
        wait = next_wait(self.settings.webhook_schedule, 0, retry_after=result.retry_after)
        if wait is None:  # an empty schedule: the first attempt was the only one
            self.jobs.record_delivery(job.id, result.model_copy(update={"outcome": "gave_up"}))
            return NotifyOutput(job_id=job.id, outcome="gave_up")
        # the unit first: an invocation killed between the two leaves a running unit, never none
        self.units.start(name=result.webhook_id, job_id=job.id, event=result.event, step=0, wait_seconds=wait)
        self._record_retrying(job, result, wait)
        return NotifyOutput(job_id=job.id, outcome="scheduled")

    def deliver(self, step: DeliverInput) -> DeliveryStep:
        """One scheduled retry of a delivery unit: delivered, refused, the next wait, or dead-lettered."""
        job = self.jobs.get(step.job_id)
        if job.webhook_url is None or job.webhook_body is None:
            raise NotFound(f"job {job.id} has no webhook to deliver")
        result = self._attempt(job, job.webhook_body)
        done = DeliveryStep(job_id=job.id, event=step.event, step=step.step, done=True)
        if result.outcome != "retrying":
            self.jobs.record_delivery(job.id, result)
            return done
        wait = next_wait(self.settings.webhook_schedule, step.step + 1, retry_after=result.retry_after)
        if wait is None:
            self.jobs.record_delivery(job.id, result.model_copy(update={"outcome": "dead_lettered"}))
            self.units.dead_letter(job_id=job.id, event=step.event, webhook_id=result.webhook_id, last=result)
            metrics.add_metric(name="WebhookDeadLettered", unit="Count", value=1)
            return done
        self._record_retrying(job, result, wait)
        return DeliveryStep(job_id=job.id, event=step.event, step=step.step + 1, wait_seconds=wait)

    def redeliver(self, job: Job) -> str:
        """Send the job's final webhook again now, with the same webhook-id and body; return the id."""
        if job.webhook_url is None or job.webhook_body is None or not job.status.terminal:
            raise Conflict(f"job {job.id} has no final webhook to redeliver")
        event = event_type(job.status)
        msg_id = webhook_id(job.id, event)
        name = f"{msg_id}-r{len(job.deliveries) + 1}"
        self.units.start(name=name, job_id=job.id, event=event, step=0, wait_seconds=0)
        return msg_id

    def cancel(self, job: Job, *, workflow: Workflow, api_url: str) -> Job:
        """Cancel an unfinished job: mark it canceled (InvalidTransition if it already finished), stop
        its execution, and send ``segmentation.canceled`` through a delivery unit."""
        error = JobError(type="canceled", message="canceled by the API client")
        canceled = self.jobs.transition(job.id, JobStatus.CANCELED, error=error)
        workflow.stop(job.id, execution=canceled.execution)
        if self.admission is not None:
            # the stopped execution runs no Store or Fail to give the slot back; WaveSpeed cannot
            # cancel a prediction, and one under way is no longer ours to wait for
            self.admission.release(job.id)
        metrics.add_metric(name="JobCanceled", unit="Count", value=1)
        if canceled.webhook_url is not None:
            self._body(canceled, api_url=api_url)
            event = event_type(canceled.status)
            self.units.start(
                name=webhook_id(canceled.id, event), job_id=canceled.id, event=event, step=0, wait_seconds=0
            )
        return canceled

    def expire_upload(self, step: JobRef) -> NotifyOutput:
        """A registered upload's time is up: fail the job as upload_expired if it still waits, and notify."""
        error = JobError(
            type="upload_expired", message="the image was not uploaded before the upload URL expired"
        )
        try:
            self.jobs.transition(
                step.job_id, JobStatus.FAILED, only_from=JobStatus.AWAITING_UPLOAD, error=error
            )
        except InvalidTransition:
            return NotifyOutput(job_id=step.job_id, outcome="uploaded")
        metrics.add_metric(name="UploadExpired", unit="Count", value=1)
        return self.notify(step)

    def _body(self, job: Job, *, api_url: str, secrets_: list[str] | None = None) -> str:
        """The event body, built once per job and kept: every retry sends these exact bytes."""
        secret = (secrets_ or self.tenants.webhook_secrets(job.tenant))[0]
        built = build_body(
            job, api_url=api_url, secret=secret, now=self.now(), link_seconds=self.settings.mask_link_seconds
        )
        return self.jobs.set_webhook_body(
            job.id, built, webhook_id=webhook_id(job.id, event_type(job.status))
        )

    def _attempt(self, job: Job, body: str, *, secrets_: list[str] | None = None) -> DeliveryAttempt:
        """One signed attempt of the job's final event, numbered after the ones recorded before it."""
        event = event_type(job.status)
        number = 1 + sum(1 for d in job.deliveries if d.event == event)
        result = self.sender.send(
            str(job.webhook_url),
            msg_id=webhook_id(job.id, event),
            body=body,
            secrets_=secrets_ or self.tenants.webhook_secrets(job.tenant),
            event=event,
            attempt=number,
        )
        crashpoints.reached("notify.after_send")
        logger.info("webhook attempt", extra={"outcome": result.outcome, "status_code": result.status_code})
        if result.outcome == "delivered":
            metrics.add_metric(name="WebhookDelivered", unit="Count", value=1)
        return result

    def _record_retrying(self, job: Job, result: DeliveryAttempt, wait: int) -> None:
        next_at = self.now() + timedelta(seconds=wait)
        self.jobs.record_delivery(job.id, result.model_copy(update={"next_attempt_at": next_at}))
