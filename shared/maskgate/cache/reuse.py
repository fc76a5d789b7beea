"""At Submit, before any WaveSpeed slot is taken: reuse an identical earlier job's results, wait for an
identical job in flight, or compute (a miss).

A hit copies every object under the source job's ``results/<job_id>/`` to the new job's, takes the
source job's result fields (whatever they are: every field that is not the job's own bookkeeping,
with their ``results/`` keys moved to the new job), and ends the job ``succeeded`` with
``cache: "hit"`` in one conditional write that also requires that no submit was ever made for it.
The workflow then sends the usual webhook (``ResultReused`` routes it to Notify).

Waiting is the workflow's own: ``ResultPending`` is retried with a growing wait, so a job whose twin
is in flight is submitted only if that twin fails, is canceled, or outlives any deadline (then its
entry is taken over). Errors tree: ``ResultReused`` and ``ResultPending`` in ``maskgate.errors``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from maskgate.cache.entries import CacheEntries
from maskgate.cache.key import job_key, request_key
from maskgate.contracts.job import CacheOutcome, Job, JobStatus, utcnow
from maskgate.contracts.prompts import Prompts
from maskgate.contracts.results import coco_key, instances_key
from maskgate.errors import InvalidTransition, JobNotFound, ObjectNotFound, ResultPending, ResultReused
from maskgate.observability import logger, metrics, tenant_metric
from maskgate.results import coco
from maskgate.results.files import encoded, instances_for_job
from maskgate.stores.bucket import Bucket
from maskgate.stores.jobs import JobStore

# The job's own bookkeeping: never copied from the job whose results are reused. Every other field of
# a succeeded job is a result and rides along (masks today; whatever later steps add).
NOT_RESULTS = frozenset(
    {
        "id",
        "tenant",
        "status",
        "source",
        "request",
        "image",
        "prediction_id",
        "task_token",
        "error",
        "created_at",
        "updated_at",
        "finished_at",
        "webhook_url",
        "metadata",
        "deliveries",
        "webhook_body",
        "submit_attempt",
        "submit_started_at",
        "callback_token",
        "webhook_pending",
        "execution",
        "cache",
        "price_micros",  # the tenant's spend ledger: a hit reserves its own price, then releases it
        "charge",
        "quota_taken",
    }
)
MAX_TAKEOVERS = 3  # holders that turn out unusable one after another: then compute without waiting


def result_fields(source: Job, job_id: str) -> dict[str, Any]:
    """The source job's results as the new job's: its non-bookkeeping fields, keys under
    ``results/<source>/`` moved to ``results/<job_id>/``."""
    fields = source.model_dump(mode="json", exclude=set(NOT_RESULTS), exclude_defaults=True)
    moved = json.dumps(fields).replace(f"results/{source.id}/", f"results/{job_id}/")
    found: dict[str, Any] = json.loads(moved)
    return found


def on_cache_hit(job: Job) -> None:
    """Everything a hit settles besides the job itself: counted per tenant (``CacheHit``), logged.
    Spend bookkeeping that a hit releases belongs here: it runs once per hit, right after the job
    became ``succeeded``."""
    tenant_metric("CacheHit", job.tenant)
    logger.info("results reused from the cache", extra={"job_id": job.id, "tenant": job.tenant})


@dataclass(frozen=True)
class ResultCache:
    jobs: JobStore
    bucket: Bucket
    entries: CacheEntries
    stale_after: timedelta  # a holder still unfinished this long after it was created is given up on
    now: Callable[[], datetime] = utcnow

    def consult(self, job: Job) -> CacheOutcome | None:
        """None when the cache does not apply; "miss" when this job holds the key and computes.
        Raises ResultReused (the job succeeded from the cache) or ResultPending (an identical job is
        in flight: try again later)."""
        key = job_key(job)
        if key is None or not self.entries.enabled_for(job.tenant):
            return None
        holder = self.entries.claim(job.tenant, key, job.id)
        for _ in range(MAX_TAKEOVERS):
            if holder is None:
                return "miss"
            source = self._job(holder)
            succeeded = source is not None and source.status is JobStatus.SUCCEEDED
            fields = self._copied(job, source) if source is not None and succeeded else None
            if source is not None and fields is not None:
                self._finish(job, source, fields)  # raises ResultReused unless the job moved on meanwhile
                return None
            if source is not None and not source.status.terminal and not self._stale(source):
                metrics.add_metric(name="CachePending", unit=MetricUnit.Count, value=1)
                raise ResultPending(f"an identical job, {source.id}, is in flight")
            holder = self.entries.take_over(job.tenant, key, job.id, holder=holder)
        return "miss" if holder is None else None

    def preview(self, tenant: str, prompts: Prompts, *, image_sha256: str | None) -> CacheOutcome | None:
        """What the cache would answer for this request now, by reads alone (for a dry run): hit when
        an identical job of the tenant has succeeded, miss otherwise, None when it does not apply."""
        if image_sha256 is None or not prompts.cache or not self.entries.enabled_for(tenant):
            return None
        holder = self.entries.holder(tenant, request_key(prompts, image_sha256=image_sha256))
        source = self._job(holder) if holder is not None else None
        return "hit" if source is not None and source.status is JobStatus.SUCCEEDED else "miss"

    def _job(self, job_id: str) -> Job | None:
        try:
            return self.jobs.get(job_id)
        except JobNotFound:
            return None

    def _stale(self, source: Job) -> bool:
        return self.now() - source.created_at > self.stale_after

    def _copied(self, job: Job, source: Job) -> dict[str, Any] | None:
        """Copy every object under the source's results/ to this job's, the documents that name their job
        written again naming this one; the job's result fields (None, to compute instead, if the
        source's masks are gone or a document that names it cannot be read)."""
        copied = set(self.bucket.copy_results(source.id, job.id))
        if not {mask.key for mask in source.masks} <= copied:
            logger.info("cached results are gone; computing again", extra={"source_job": source.id})
            return None
        fields = result_fields(source, job.id)
        try:
            if instances_key(source.id) in copied:
                document = json.loads(self.bucket.get_result(instances_key(job.id)))
                body = encoded(instances_for_job(document, job.id))
                self.bucket.put_result(instances_key(job.id), body)
                if isinstance(fields.get("results"), dict):
                    fields["results"]["instances_bytes"] = len(body)
            if coco_key(source.id) in copied:
                document = json.loads(self.bucket.get_result(coco_key(job.id)))
                self.bucket.put_result(coco_key(job.id), encoded(coco.for_job(document, job)))
        except (ObjectNotFound, ValueError, TypeError, AttributeError) as exc:  # gone, or not JSON objects
            logger.info(
                "cached results are unusable; computing again",
                extra={"source_job": source.id, "error": f"{type(exc).__name__}: {exc}"[:200]},
            )
            return None
        return fields

    def _finish(self, job: Job, source: Job, fields: dict[str, Any]) -> None:
        """End the job succeeded with ``fields`` (the source's results, as this job's), only if no submit
        was ever made for it."""
        try:
            finished = self.jobs.transition(
                job.id, JobStatus.SUCCEEDED, unsubmitted=True, cache="hit", **fields
            )
        except InvalidTransition:
            # canceled, or another Submit of this job claimed it meanwhile: the usual path sorts it out
            logger.info("job moved on while its cached results were copied", extra={"job_id": job.id})
            return
        on_cache_hit(finished)
        raise ResultReused(f"results reused from {source.id}")
