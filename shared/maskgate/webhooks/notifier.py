"""A job's final webhook: its body (built once and kept, so every retry sends the same bytes), the
targets it goes to (the job's own ``webhook_url`` and every registered endpoint whose filter takes the
event), each signed attempt, and the job's delivery log. The steps that deliver it (Notify, Deliver,
expiry, cancel, redelivery) are in ``maskgate.steps``."""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from maskgate import crashpoints
from maskgate.contracts.endpoints import Endpoint
from maskgate.contracts.job import DeliveryAttempt, Job, utcnow
from maskgate.observability import logger, metrics
from maskgate.settings import Settings
from maskgate.stores.attempt_log import AttemptLog, EndpointHealth
from maskgate.stores.endpoints import EndpointStore
from maskgate.stores.jobs import JobStore
from maskgate.stores.rate_limit import Throttle
from maskgate.stores.tenant_events import TenantEvent, TenantEvents
from maskgate.stores.tenants import TenantStore
from maskgate.webhooks.body import build_body, endpoint_disabled_body, event_type, webhook_id
from maskgate.webhooks.schedule import next_wait
from maskgate.webhooks.sender import WebhookSender
from maskgate.webhooks.units import DeliveryUnits

TenantTargets = tuple[list[str], list[Endpoint]]  # a tenant's signing secrets and its endpoints, one read


@dataclass(frozen=True)
class Target:
    """Where one delivery of an event goes, and the secrets that sign it."""

    url: str
    secrets: list[str]
    endpoint_id: str | None = None  # None: the job's own webhook_url, signed with the tenant's secrets
    per_second: int | None = None  # the endpoint's rate limit


@dataclass(frozen=True)
class Throttled:
    """A send to a throttled endpoint that has to wait: nothing was sent, nothing counts as failed."""

    endpoint_id: str
    event: str
    webhook_id: str
    wait_seconds: float


THROTTLE_WAIT_SECONDS = 2.0  # how long an attempt waits in its invocation for its endpoint's turn


def unit_name(msg_id: str, endpoint_id: str | None) -> str:
    """The delivery unit's execution name: the webhook-id, and the endpoint's id for an endpoint."""
    return msg_id if endpoint_id is None else f"{msg_id}_{endpoint_id}"


@dataclass(frozen=True)
class Notifier:
    """The stores, sender and delivery units every step around a job's webhook uses."""

    jobs: JobStore
    tenants: TenantStore
    sender: WebhookSender
    units: DeliveryUnits
    settings: Settings
    endpoints: EndpointStore
    log: AttemptLog
    health: EndpointHealth
    throttle: Throttle
    events: TenantEvents
    now: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep

    def body(self, job: Job, *, api_url: str, secrets_: list[str] | None = None) -> str:
        """The event body, built once per job and kept: every retry sends these exact bytes."""
        built = self.build(job, api_url=api_url, secrets_=secrets_)
        return self.jobs.set_webhook_body(
            job.id, built, webhook_id=webhook_id(job.id, event_type(job.status))
        )

    def build(self, job: Job, *, api_url: str, secrets_: list[str] | None = None) -> str:
        """The event body of the job as it is given (not kept: ``body`` keeps it, or a finishing
        write carries it, see ``ending_fields``)."""
        secret = (secrets_ or self.tenants.webhook_secrets(job.tenant))[0]
        return build_body(
            job, api_url=api_url, secret=secret, now=self.now(), link_seconds=self.settings.mask_link_seconds
        )

    def ending_fields(self, job: Job, read: TenantTargets) -> dict[str, str]:
        """For the write that finishes ``job`` (given as it will be once finished): its webhook body and
        pending mark, so that the body is kept by that one write instead of one more; nothing when the
        event has no target. ``read`` is the tenant's ``webhook_targets``."""
        secrets_, endpoints = read
        event = event_type(job.status)
        if job.webhook_url is None and not any(e.receives(event) for e in endpoints):
            return {}
        built = self.build(job, api_url=self.settings.require("public_api_url"), secrets_=secrets_)
        return {"webhook_body": built, "webhook_pending": webhook_id(job.id, event)}

    def targets(
        self, job: Job, event: str, *, read: TenantTargets | None = None
    ) -> tuple[list[str], list[Target]]:
        """In one read of the tenant (or ``read``, its ``webhook_targets`` read just before): its
        secrets (the body's mask links are signed with the first) and every target of the event: the
        job's own webhook_url first, then each enabled endpoint whose filter takes the event. A
        disabled one whose filter takes it has the event logged as missed."""
        secrets_, endpoints = read or self.tenants.webhook_targets(job.tenant)
        found = [Target(url=str(job.webhook_url), secrets=secrets_)] if job.webhook_url is not None else []
        now = self.now()
        found += [_target(e, now) for e in endpoints if e.receives(event)]
        untold = [e for e in endpoints if e.disabled_notice_pending]
        if untold:  # an invocation died between disabling them and telling the others: tell them now
            self.tell_disabled(job.tenant, untold)
        for missed in (e for e in endpoints if not e.enabled and e.takes(event)):
            # kept in its attempt log as never sent: a recovery after re-enabling it finds the event
            self.log.record_missed(
                missed.id, webhook_id=webhook_id(job.id, event), event=event, job_id=job.id, at=now
            )
        return secrets_, found

    def target(self, job: Job, endpoint_id: str | None) -> Target | None:
        """The one target of a delivery unit, as it is now (None: the endpoint is gone or disabled)."""
        secrets_, endpoints = self.tenants.webhook_targets(job.tenant)
        if endpoint_id is None:
            return None if job.webhook_url is None else Target(url=str(job.webhook_url), secrets=secrets_)
        now = self.now()
        return next((_target(e, now) for e in endpoints if e.id == endpoint_id and e.enabled), None)

    def attempt(self, job: Job, body: str, target: Target) -> DeliveryAttempt | Throttled:
        """One signed attempt of the job's final event to one target, numbered after that target's
        earlier attempts; for a throttled endpoint whose turn is more than a moment away, Throttled."""
        event = event_type(job.status)
        number = 1 + sum(
            1 for d in job.deliveries if d.event == event and d.endpoint_id == target.endpoint_id
        )
        return self.send(target, msg_id=webhook_id(job.id, event), body=body, event=event, number=number)

    def send(
        self, target: Target, *, msg_id: str, body: str, event: str, number: int
    ) -> DeliveryAttempt | Throttled:
        """One signed attempt of an event to one target, after its turn if the endpoint is throttled."""
        if target.endpoint_id is not None and target.per_second is not None:
            wait = self._turn(target.endpoint_id, target.per_second)
            if wait is not None:
                return Throttled(target.endpoint_id, event, msg_id, wait)
        result = self.sender.send(
            target.url, msg_id=msg_id, body=body, secrets_=target.secrets, event=event, attempt=number
        ).model_copy(update={"endpoint_id": target.endpoint_id})
        crashpoints.reached("notify.after_send")
        logger.info(
            "webhook attempt",
            extra={
                "outcome": result.outcome,
                "status_code": result.status_code,
                "endpoint_id": target.endpoint_id,
            },
        )
        if result.outcome == "delivered":
            metrics.add_metric(name="WebhookDelivered", unit="Count", value=1)
        return result

    def _turn(self, endpoint_id: str, per_second: int) -> float | None:
        """Wait for the endpoint's next free send for up to THROTTLE_WAIT_SECONDS; None once it is
        taken, else how long it is still away."""
        waited = 0.0
        while (wait := self.throttle.take(endpoint_id, per_second=per_second)) is not None:
            if waited + wait > THROTTLE_WAIT_SECONDS:
                return wait
            self.sleep(wait)
            waited += wait
        return None

    def attempts(self, job: Job, body: str, targets: list[Target]) -> list[DeliveryAttempt | Throttled]:
        """One attempt to each target, all at once: together they take one attempt's budget."""
        if len(targets) == 1:
            return [self.attempt(job, body, targets[0])]
        with ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix="webhook") as pool:
            # each in a copy of this thread's context: what the invocation keeps there (the local
            # stack's crash points) sees the attempt as its own
            running = [
                pool.submit(contextvars.copy_context().run, self.attempt, job, body, target)
                for target in targets
            ]
            return [attempt.result() for attempt in running]

    def retrying(self, result: DeliveryAttempt, wait: int) -> DeliveryAttempt:
        """A retryable attempt with the time of the next one."""
        return result.model_copy(update={"next_attempt_at": self.now() + timedelta(seconds=wait)})

    def record(self, job: Job, result: DeliveryAttempt) -> None:
        """Record an attempt (see ``record_all``)."""
        self.record_all(job, [result])

    def record_all(self, job: Job, results: list[DeliveryAttempt]) -> None:
        """Record attempts on the job in one write; each one to a registered endpoint also goes to the
        endpoint's attempt log and health, which disable an endpoint that answers 410 or keeps failing."""
        self.jobs.record_deliveries(job.id, results)
        self._after(job.tenant, results, job_id=job.id)

    def record_event(self, event: TenantEvent, result: DeliveryAttempt) -> None:
        """Record an attempt of a tenant event in its endpoint's attempt log and health."""
        self._after(event.tenant, [result], job_id=None)

    def _after(self, tenant: str, results: list[DeliveryAttempt], *, job_id: str | None) -> None:
        """Log each attempt to an endpoint and count it in the endpoint's health; then disable, all
        together, every endpoint that answered 410 or has failed for the whole window."""
        disabling: dict[str, str] = {}
        window = timedelta(seconds=self.settings.endpoint_disable_after_seconds)
        for result in results:
            if result.endpoint_id is None:
                continue
            self.log.record(result, job_id=job_id)
            failing_since = self.health.observe(result.endpoint_id, delivered=result.outcome == "delivered")
            if result.status_code == 410:
                disabling[result.endpoint_id] = "the endpoint answered 410 Gone"
            elif failing_since is not None and self.now() - failing_since >= window:
                since = failing_since.isoformat().replace("+00:00", "Z")
                disabling[result.endpoint_id] = f"every delivery failed since {since}"
        if disabling:
            self.disable_endpoints(tenant, disabling)

    def disable_endpoints(self, tenant: str, reasons: dict[str, str]) -> None:
        """Disable endpoints (each once; id → reason) and tell the tenant's other endpoints."""
        disabled = [d for d in (self.endpoints.disable(tenant, i, reason=r) for i, r in reasons.items()) if d]
        for endpoint in disabled:
            metrics.add_metric(name="WebhookEndpointDisabled", unit="Count", value=1)
            logger.warning(
                "webhook endpoint disabled",
                extra={"endpoint_id": endpoint.id, "reason": endpoint.disabled_reason},
            )
        if disabled:
            self.tell_disabled(tenant, disabled)

    def tell_disabled(self, tenant: str, disabled: list[Endpoint]) -> None:
        """Tell the tenant's other enabled endpoints that take ``endpoint.disabled`` of each disabled
        endpoint: every notice is kept, then all are attempted at once (together one attempt's budget),
        each that fails retries in a delivery unit of its own, and then the endpoint's notice is marked
        sent. An invocation that dies before that leaves the mark: the next read of the tenant's
        targets tells them again, with the same bytes and webhook-id (receivers dedupe)."""
        now = self.now()
        told = [e for e in self.endpoints.list(tenant) if e.receives("endpoint.disabled")]
        notices: list[tuple[TenantEvent, Target]] = []
        for endpoint in disabled:
            body, msg_id = endpoint_disabled_body(endpoint, now=now)
            notice = TenantEvent(webhook_id=msg_id, tenant=tenant, type="endpoint.disabled", body=body)
            others = [other for other in told if other.id != endpoint.id]
            self.events.keep(notice, at=now, told=[o.id for o in others])  # first: retries send these bytes
            notices += [(notice, _target(other, now)) for other in others]
        self._send_events(tenant, notices)
        for endpoint in disabled:
            self.endpoints.notice_sent(tenant, endpoint.id)

    def tell(self, event: TenantEvent) -> None:
        """Send a tenant event (about no job, e.g. ``tenant.spend_threshold``) to each of the tenant's
        enabled endpoints that take it, as ``endpoint.disabled`` is sent: kept first, all attempted at
        once, each that fails retried by a delivery unit of its own."""
        now = self.now()
        told = [e for e in self.endpoints.list(event.tenant) if e.receives(event.type)]
        self.events.keep(event, at=now, told=[e.id for e in told])
        self._send_events(event.tenant, [(event, _target(e, now)) for e in told])

    def _send_events(self, tenant: str, notices: list[tuple[TenantEvent, Target]]) -> None:
        """The first attempt of each (event, endpoint), all at once; follow-ups and records."""
        if notices:
            with ThreadPoolExecutor(max_workers=len(notices), thread_name_prefix="webhook") as pool:
                running = [
                    pool.submit(
                        contextvars.copy_context().run,
                        self.send,
                        target,
                        msg_id=notice.webhook_id,
                        body=notice.body,
                        event=notice.type,
                        number=1,
                    )
                    for notice, target in notices
                ]
                results = [attempt.result() for attempt in running]
            kept = [self._follow_up(notice, r) for (notice, _), r in zip(notices, results, strict=True)]
            self._after(tenant, [r for r in kept if r is not None], job_id=None)

    def _follow_up(self, event: TenantEvent, result: DeliveryAttempt | Throttled) -> DeliveryAttempt | None:
        """A tenant event's first attempt to an endpoint: a retryable or throttled one gets its
        delivery unit (started before anything is recorded); what to record of it."""
        if isinstance(result, Throttled):
            self._start_unit(event, result.endpoint_id, step=0, wait=math.ceil(result.wait_seconds))
            return None
        if result.outcome != "retrying":
            return result
        wait = next_wait(self.settings.webhook_schedule, 0, retry_after=result.retry_after)
        if wait is None:
            return result.model_copy(update={"outcome": "gave_up"})
        assert result.endpoint_id is not None  # noqa: S101 (tenant events go to endpoints only)
        self._start_unit(event, result.endpoint_id, step=0, wait=wait)
        return self.retrying(result, wait)

    def _start_unit(self, event: TenantEvent, endpoint_id: str, *, step: int, wait: int) -> None:
        self.units.start(
            name=unit_name(event.webhook_id, endpoint_id),
            message_id=event.webhook_id,
            event=event.type,
            step=step,
            wait_seconds=wait,
            endpoint_id=endpoint_id,
        )

    def event_target(self, event: TenantEvent, endpoint_id: str) -> Target | None:
        """The endpoint a tenant event's unit delivers to, as it is now (None: gone, disabled, or its
        filter no longer takes the event)."""
        now = self.now()
        found = (
            e for e in self.endpoints.list(event.tenant) if e.id == endpoint_id and e.receives(event.type)
        )
        return next((_target(e, now) for e in found), None)


def _target(endpoint: Endpoint, now: datetime) -> Target:
    return Target(
        url=endpoint.url,
        secrets=endpoint.secrets(now),
        endpoint_id=endpoint.id,
        per_second=endpoint.rate_limit_per_second,
    )
