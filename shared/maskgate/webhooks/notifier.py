"""A job's final webhook: its body (built once and kept, so every retry sends the same bytes), each
signed attempt, and the job's delivery log. The steps that deliver it (Notify, Deliver, expiry,
cancel, redelivery) are in ``maskgate.steps``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from maskgate import crashpoints
from maskgate.contracts.job import DeliveryAttempt, Job, utcnow
from maskgate.observability import logger, metrics
from maskgate.settings import Settings
from maskgate.stores.jobs import JobStore
from maskgate.stores.tenants import TenantStore
from maskgate.webhooks.body import build_body, event_type, webhook_id
from maskgate.webhooks.sender import WebhookSender
from maskgate.webhooks.units import DeliveryUnits


@dataclass(frozen=True)
class Notifier:
    """The stores, sender and delivery units every step around a job's webhook uses."""

    jobs: JobStore
    tenants: TenantStore
    sender: WebhookSender
    units: DeliveryUnits
    settings: Settings
    now: Callable[[], datetime] = utcnow

    def body(self, job: Job, *, api_url: str, secrets_: list[str] | None = None) -> str:
        """The event body, built once per job and kept: every retry sends these exact bytes."""
        secret = (secrets_ or self.tenants.webhook_secrets(job.tenant))[0]
        built = build_body(
            job, api_url=api_url, secret=secret, now=self.now(), link_seconds=self.settings.mask_link_seconds
        )
        return self.jobs.set_webhook_body(
            job.id, built, webhook_id=webhook_id(job.id, event_type(job.status))
        )

    def attempt(self, job: Job, body: str, *, secrets_: list[str] | None = None) -> DeliveryAttempt:
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

    def record_retrying(self, job: Job, result: DeliveryAttempt, wait: int) -> None:
        """Record a retryable attempt with the time of the next one."""
        next_at = self.now() + timedelta(seconds=wait)
        self.jobs.record_delivery(job.id, result.model_copy(update={"next_attempt_at": next_at}))
