"""A tenant's limits at work: quotas and the spend cap where jobs are created, the price settled or
released as jobs go on, the monthly threshold notice, usage, and dry runs.

- ``Gate.create`` (the API's creates): the tenant's quotas are taken (``QuotaExceeded``, 429) and the
  job's price reserved in the job's own write (``SpendCapReached``, 402); nothing is created then.
- ``Gate.create_upload`` (a raw S3 upload): the price is reserved the same way; over the cap the job is
  recorded ``failed`` / ``spend_cap_reached`` (and notified like any failed upload). Its quotas are
  taken by Submit (``Gate.admit_queued``): while they are full it raises ``QuotaDeferred``, which the
  workflow retries as it retries the WaveSpeed tier, so the job waits ``queued``, and fails
  ``quota_exceeded`` when the retries run out (about the job deadline).
- ``Gate.finish`` runs on every job the job store moves to a terminal status: its price is settled or
  released and its place in flight given back.
- Crossing ``spend_threshold`` × cap sends ``tenant.spend_threshold`` once per tenant and month.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from maskgate.contracts.job import Job, JobError, JobStatus, utcnow
from maskgate.contracts.limits import DryRun, TenantLimits, Usage, UsageJobs, month_of, usd
from maskgate.errors import QuotaDeferred, QuotaExceeded, SpendCapReached
from maskgate.observability import logger, tenant_metric
from maskgate.settings import Settings
from maskgate.stores.limits import LimitStore, Quotas
from maskgate.stores.spend import CONFLICT_TRIES, SpendLedger

if TYPE_CHECKING:
    from maskgate.stores.jobs import JobStore
    from maskgate.stores.tenant_events import TenantEvent
    from maskgate.webhooks.notifier import Notifier

THRESHOLD_EVENT = "tenant.spend_threshold"


@dataclass(frozen=True)
class Gate:
    limits: LimitStore
    quotas: Quotas
    ledger: SpendLedger
    settings: Settings
    notifier: Callable[[], Notifier]  # built when a notice is sent
    now: Callable[[], datetime] = utcnow

    def create(self, job: Job, jobs: JobStore, *, take_quotas: bool = True) -> bool:
        """Create the job within its tenant's limits; False (nothing new) if it exists already."""
        limits = self.limits.get(job.tenant)
        taken = take_quotas and Quotas.enabled(limits)
        if taken:
            try:
                self.quotas.take(job.tenant, job.id, limits)
            except QuotaExceeded:
                self._refused(job.tenant, "quota_rejections", "QuotaRejected")
                raise
        priced = job.model_copy(
            update={
                "price_micros": self.settings.price_micros(),
                "charge": "reserved",
                # True: it holds a place in flight; False: its quotas were checked here (Submit leaves
                # it alone); None (a raw upload): Submit takes them
                "quota_taken": taken if take_quotas else None,
            }
        )
        try:
            created = self._reserve(priced, jobs, limits)
        except Exception as exc:
            if not self.ledger.reserve_refused(exc):
                raise
            if taken:
                self.quotas.release(job.tenant, job.id)
            self._refused(job.tenant, "cap_rejections", "SpendCapReached")
            raise self._cap_reached(job.tenant, limits) from exc
        if created:
            tenant_metric("TenantSpend", job.tenant, usd(priced.price_micros or 0), "None")
            self._threshold(job.tenant, month_of(job.created_at), limits)
        return created

    def _reserve(self, priced: Job, jobs: JobStore, limits: TenantLimits) -> bool:
        """The job written with its price reserved, in one transaction; tried again (jittered) while it
        only meets other requests' transactions on the tenant's month."""
        reserve = [self.ledger.reserve_item(priced, cap_micros=limits.cap_micros)]
        for attempt in range(CONFLICT_TRIES - 1):
            try:
                return jobs.create(priced, also=reserve)
            except Exception as exc:
                if not self.ledger.conflicted(exc):
                    raise
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 (jitter, not a secret)
        return jobs.create(priced, also=reserve)

    def create_upload(self, job: Job, jobs: JobStore) -> bool:
        """Create a raw upload's job with its price reserved (its quotas wait for Submit); over the
        cap, the job is recorded failed / spend_cap_reached instead."""
        if job.status.terminal:
            return jobs.create(job)
        try:
            return self.create(job, jobs, take_quotas=False)
        except SpendCapReached as exc:
            error = JobError(type=exc.type, message=exc.message)
            failed = job.model_copy(
                update={"status": JobStatus.FAILED, "error": error, "finished_at": job.updated_at}
            )
            return jobs.create(failed)

    def admit_queued(self, job: Job) -> None:
        """At Submit: take the quotas of a job that has not taken them (a raw upload); QuotaDeferred
        while they are full (the job waits queued)."""
        if job.quota_taken is not None:
            return
        limits = self.limits.get(job.tenant)
        if not Quotas.enabled(limits):
            return
        try:
            self.quotas.take(job.tenant, job.id, limits)
        except QuotaExceeded as exc:
            tenant_metric("QuotaRejected", job.tenant)
            raise QuotaDeferred(exc.message, retry_after=exc.retry_after) from exc
        self.quotas.mark_taken(job.id)

    def finish(self, job: Job) -> None:
        """A job that just ended: settle or release its price, count its outcome, free its place."""
        self.ledger.finish(job)
        if job.quota_taken:
            self.quotas.release(job.tenant, job.id)

    def preview(self, tenant: str) -> DryRun:
        """Whether a request of the tenant would be let through now, and its price; nothing is taken."""
        limits = self.limits.get(tenant)
        price = self.settings.price_micros()
        counters = self.ledger.counters(tenant, month_of(self.now()))
        cap = limits.cap_micros
        refusal: QuotaExceeded | SpendCapReached | None = self.quotas.check(tenant, limits)
        if refusal is None and cap is not None and counters["committed"] + price > cap:
            refusal = self._cap_reached(tenant, limits, committed=counters["committed"])
        return DryRun(
            model=_model(),
            price_usd=usd(price),
            would_run=refusal is None,
            refused_by=None if refusal is None else refusal.type,
            detail=None if refusal is None else refusal.message,
            retry_after=refusal.retry_after if isinstance(refusal, QuotaExceeded) else None,
            cap_usd=limits.monthly_spend_cap_usd,
            month_spend_usd=usd(counters["committed"]),
            remaining_usd=None if cap is None else usd(max(0, cap - counters["committed"])),
            cache="unknown" if limits.cache_enabled else "off",
        )

    def usage(self, tenant: str, month: str) -> Usage:
        """The tenant's usage in a month, its cap and what remains of it."""
        limits = self.limits.get(tenant)
        c = self.ledger.counters(tenant, month)
        cap = limits.cap_micros
        return Usage(
            tenant=tenant,
            month=month,
            jobs=UsageJobs(**{name: c[name] for name in UsageJobs.model_fields}),
            wavespeed_usd=usd(c["spent"]),
            reserved_usd=usd(c["reserved"]),
            aws_estimated_usd=usd(c["submitted"] * self.settings.aws_cost_per_job_micros),
            cache_saved_usd=usd(c["cache_saved"]),
            cap_usd=limits.monthly_spend_cap_usd,
            remaining_usd=None if cap is None else usd(max(0, cap - c["committed"])),
            spend_threshold=limits.spend_threshold,
            threshold_notified_at=c["threshold_at"],
            limits=limits,
        )

    def _refused(self, tenant: str, counter: str, metric: str) -> None:
        self.ledger.count(tenant, month_of(self.now()), counter)
        tenant_metric(metric, tenant)

    def _cap_reached(
        self, tenant: str, limits: TenantLimits, committed: int | None = None
    ) -> SpendCapReached:
        month = month_of(self.now())
        if committed is None:
            committed = self.ledger.counters(tenant, month)["committed"]
        cap = limits.monthly_spend_cap_usd or 0.0
        return SpendCapReached(
            f"the job's price (${usd(self.settings.price_micros())}) does not fit under the tenant's "
            f"monthly spend cap of ${cap} (${usd(committed)} spent and reserved in {month})",
            cap_usd=cap,
            month_spend_usd=usd(committed),
            month=month,
        )

    def _threshold(self, tenant: str, month: str, limits: TenantLimits) -> None:
        """Once a month, when the month's spend reaches the threshold: a metric and the event."""
        cap = limits.cap_micros
        if cap is None:
            return
        counters = self.ledger.counters(tenant, month, consistent=False)
        if counters["threshold_at"] or counters["committed"] < limits.spend_threshold * cap:
            return
        try:
            # kept before the month is marked: an invocation that dies after the mark leaves the event,
            # and the endpoints it goes to, for the reconcile sweep (the first kept of racing requests)
            notifier = self.notifier()
            event = self._threshold_event(tenant, month, limits, counters["committed"])
            told = [e.id for e in notifier.endpoints.list(tenant) if e.receives(THRESHOLD_EVENT)]
            kept_first = notifier.events.keep(event, at=self.now(), told=told, first=True)
        except Exception:  # a notice never fails the request that crossed it (its job is written)
            logger.exception("spend threshold notice not kept", extra={"tenant": tenant, "month": month})
            return
        if not self.ledger.mark_threshold(tenant, month):
            return  # another request got there first
        tenant_metric("SpendThresholdReached", tenant)
        logger.info("spend threshold reached", extra={"tenant": tenant, "month": month})
        try:
            # the bytes kept first: this request's, or those of one that died before the mark
            notifier.tell(event if kept_first else notifier.events.get(event.webhook_id))
        except Exception:  # the sweep sends what is kept
            logger.exception("spend threshold notice not sent", extra={"tenant": tenant, "month": month})

    def _threshold_event(self, tenant: str, month: str, limits: TenantLimits, committed: int) -> TenantEvent:
        """The notice, sent to each of the tenant's endpoints that take the event and retried as any
        tenant event is."""
        from maskgate.stores.tenant_events import TenantEvent

        now = self.now()
        body = json.dumps(
            {
                "type": THRESHOLD_EVENT,
                "timestamp": now.isoformat().replace("+00:00", "Z"),
                "data": {
                    "tenant": tenant,
                    "month": month,
                    "threshold": limits.spend_threshold,
                    "cap_usd": limits.monthly_spend_cap_usd,
                    "month_spend_usd": usd(committed),
                },
            },
            separators=(",", ":"),
        )
        return TenantEvent(
            webhook_id=threshold_webhook_id(tenant, month), tenant=tenant, type=THRESHOLD_EVENT, body=body
        )


def threshold_webhook_id(tenant: str, month: str) -> str:
    """The ``tenant.spend_threshold`` notice's webhook-id, one per tenant and month: receivers dedupe on
    it and the event is kept under it, so two tenants' notices of one month must not share it. The
    tenant is a digest: a webhook-id names delivery units, whose names take letters, digits, - and _."""
    return f"msg_spend_threshold_{month}_{hashlib.sha256(tenant.encode()).hexdigest()[:16]}"


def _model() -> str:
    from maskgate.settings import MODEL

    return MODEL
