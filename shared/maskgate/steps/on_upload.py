"""S3 ``ObjectCreated`` under ``uploads/``: start one job per uploaded object (a redelivery finds its job).

A raw upload carries its request in the object metadata; a registered one (``POST /v1/uploads``)
lands on the key the server chose for its job. An upload that fails validation is still recorded
(``failed`` with its typed error) and its workflow started, so the failure is visible in the API
and reaches the caller's webhook: nothing is dropped. An upload is validated whole and copied to
``inputs/`` pinned to the version that was read; the job points at the copy, so WaveSpeed gets
exactly the bytes that were checked. S3's ``s3:TestEvent`` (sent once when the notification is
configured) carries no records: it is acknowledged and ignored, never raised (an error would be
retried, then dead-lettered).

Every re-run is safe: a job is written once (conditional on its id) and a workflow started once (the
execution is named after the job), so a run that crashed between the two is finished by its retry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from pydantic import ValidationError

from maskgate import crashpoints
from maskgate.contracts.job import ImageLocation, Job, JobError, JobStatus, utcnow
from maskgate.contracts.prompts import Prompts, parse_prompts, strict_json
from maskgate.contracts.s3_events import S3Record, UploadEvent
from maskgate.contracts.steps import UploadedJob, UploadOutput
from maskgate.egress.url_check import check_outbound_url
from maskgate.errors import (
    InvalidImage,
    InvalidRequest,
    InvalidTransition,
    JobNotFound,
    MissingPrompt,
    ObjectNotFound,
    RequestError,
    UploadChanged,
)
from maskgate.ids import PATTERN, derived_job_id
from maskgate.observability import logger, metrics
from maskgate.settings import Settings
from maskgate.stores.bucket import UPLOAD_PREFIX, Bucket, StoredObject, upload_key
from maskgate.stores.jobs import JobStore
from maskgate.workflow.executions import Workflow

if TYPE_CHECKING:
    from maskgate.steps.limits import Gate

METADATA_KEY = "maskgate"


@dataclass(frozen=True)
class UploadIntake:
    """The jobs of objects landing under ``uploads/``."""

    jobs: JobStore
    bucket: Bucket
    workflow: Workflow
    settings: Settings
    now: Callable[[], datetime] = utcnow
    gate: Gate | None = None  # the tenant's spend cap (None: no limits)

    def accept_event(self, event: UploadEvent) -> UploadOutput:
        """The jobs of an S3 event's records; a record that does not parse is logged and skipped, and
        an event without records (``s3:TestEvent``) is acknowledged and ignored."""
        if event.ignored is not None:
            logger.info("S3 event without records ignored", extra={"s3_event": event.ignored})
            return UploadOutput(ignored=event.ignored)
        records, refused = event.records()
        for reason in refused:
            logger.info("malformed S3 record ignored", extra={"reason": reason})
            metrics.add_metric(name="UploadRecordRefused", unit="Count", value=1)
        jobs = [self.accept_upload(record) for record in records]
        return UploadOutput(
            jobs=[UploadedJob(id=job.id, status=job.status) for job in jobs if job is not None]
        )

    def accept_upload(self, record: S3Record) -> Job | None:
        """Start (or, for a redelivered event, find) the job for one S3 ``ObjectCreated`` record."""
        key = unquote_plus(record.s3.object.key)
        if not key.startswith(UPLOAD_PREFIX):
            logger.info("object outside uploads/ ignored", extra={"key": key})
            return None
        named = self._named_job(key)
        if named is not None:
            if self._is_registration(named, key):
                return self._accept_registered(named, key)
            logger.info("upload refused: its key names a job it was not registered for", extra={"key": key})
            metrics.add_metric(name="UploadRefused", unit="Count", value=1)
            return None
        return self._accept_raw(record, key)

    def _accept_raw(self, record: S3Record, key: str) -> Job:
        """A raw upload: its request from the object metadata, its job id from the event."""
        obj = record.s3.object
        write = obj.versionId or obj.sequencer or f"{obj.eTag}@{record.eventTime.isoformat()}"
        job_id = derived_job_id(record.eventTime, record.s3.bucket.name, key, str(write))
        try:
            job = self.jobs.get(job_id)
        except JobNotFound:
            job = self._record_raw(job_id, key)
        else:
            # a redelivered event, or the retry of a run that crashed before starting the workflow
            logger.info("redelivered upload event: job exists", extra={"job_id": job_id})
        self.workflow.start(job_id, created_at=job.created_at)
        return job

    def _record_raw(self, job_id: str, key: str) -> Job:
        at = self.now()
        try:
            stored: StoredObject | None = self.bucket.head(key)
        except ObjectNotFound:
            stored = None  # deleted before we read it: still recorded, as invalid_image
        try:
            job = self._upload_job(job_id, stored, at)
        except RequestError as exc:
            logger.info("upload rejected", extra={"job_id": job_id, "error_type": exc.type})
            job = Job(
                id=job_id,
                tenant=self.settings.default_tenant,
                status=JobStatus.FAILED,
                source="upload",
                image=ImageLocation(bucket=self.bucket.name, key=key),
                error=JobError(type=exc.type, message=exc.message),
                **self._salvage(stored.metadata if stored else {}),
                created_at=at,
                updated_at=at,
                finished_at=at,
            )
        # its price reserved against the cap in the same write (over it: failed / spend_cap_reached)
        if self.jobs.create(job) if self.gate is None else self.gate.create_upload(job, self.jobs):
            crashpoints.reached("on_upload.after_job")
            return job
        return self.jobs.get(job_id)  # a concurrent delivery of the same event wrote it first

    def _named_job(self, key: str) -> Job | None:
        """The job a key of the form ``uploads/<tenant>/<job_id>/...`` names, if it exists."""
        parts = key.split("/", 3)
        if len(parts) != 4 or not re.fullmatch(PATTERN, parts[2]):
            return None
        try:
            return self.jobs.get(parts[2])
        except JobNotFound:
            return None

    @staticmethod
    def _is_registration(job: Job, key: str) -> bool:
        """Whether ``key`` is the one ``POST /v1/uploads`` handed out for this job (and its tenant)."""
        image = job.image
        if job.source != "upload" or image is None:
            return False
        if image.filename is not None:
            return key == upload_key(job.tenant, job.id)
        # registered before keys were chosen by the server: the key it was given, while it waits
        return key == image.key and job.status is JobStatus.AWAITING_UPLOAD

    def _accept_registered(self, job: Job, key: str) -> Job:
        if job.status is JobStatus.AWAITING_UPLOAD:
            job, moved = self._receive(job, key)
            if moved:
                crashpoints.reached("on_upload.after_job")
        if job.status is JobStatus.FAILED and job.error is not None and job.error.type == "upload_expired":
            logger.info("upload arrived after its job expired", extra={"job_id": job.id})
            return job
        # a no-op when it already runs; resumes a start that crashed after the job moved
        self.workflow.start(job.id, created_at=job.created_at)
        return job

    def _receive(self, job: Job, key: str) -> tuple[Job, bool]:
        """Move a waiting job to queued (its image validated and pinned) or failed; False if another
        run (a redelivery, the expiry timer) moved it first."""
        fields: dict[str, Any]
        try:
            fields = {"image": self._pin_registered(job, key)}
            target = JobStatus.QUEUED
        except RequestError as exc:
            fields = {"error": JobError(type=exc.type, message=exc.message)}
            target = JobStatus.FAILED
        try:
            moved = self.jobs.transition(job.id, target, only_from=JobStatus.AWAITING_UPLOAD, **fields)
        except InvalidTransition:
            return self.jobs.get(job.id), False
        return moved, True

    def _pin_registered(self, job: Job, key: str) -> ImageLocation:
        filename = job.image.filename if job.image is not None else None
        try:
            image = self._pin(job.id, self._head(key), job.request)
        except UploadChanged:
            # written again while we read it: the registration takes the newest upload (one retry)
            image = self._pin(job.id, self._head(key), job.request)
        return image.model_copy(update={"filename": filename})

    def _head(self, key: str) -> StoredObject:
        try:
            return self.bucket.head(key)
        except ObjectNotFound as exc:
            raise InvalidImage("the upload was deleted before it could be read") from exc

    def _pin(self, job_id: str, stored: StoredObject, prompts: Prompts | None) -> ImageLocation:
        """Validate the whole upload, check the prompts fit it, and copy it to ``inputs/<job_id>/``
        conditional on the version that was validated; the location of that copy."""
        info = self.bucket.validate_upload(stored)
        if prompts is not None:
            prompts.check_inside(info.width or 0, info.height or 0)
        key = self.bucket.pin_input(job_id, stored, info)
        return ImageLocation(
            bucket=self.bucket.name,
            key=key,
            format=info.format,
            width=info.width,
            height=info.height,
            upload_key=stored.key,
            sha256=info.sha256,  # the result cache's key: maskgate holds these bytes
        )

    def _upload_job(self, job_id: str, stored: StoredObject | None, at: datetime) -> Job:
        if stored is None:
            raise InvalidImage("the upload was deleted before it could be read")
        prompts = self._upload_prompts(stored.metadata)
        if prompts.webhook_url:
            check_outbound_url(prompts.webhook_url, local=self.settings.is_local)
        # A raw upload changed while it was read is refused (UploadChanged): the newer write has
        # its own event and so its own job, which validates it.
        image = self._pin(job_id, stored, prompts)
        return Job(
            id=job_id,
            tenant=self.settings.default_tenant,
            status=JobStatus.QUEUED,
            source="upload",
            request=prompts,
            image=image,
            created_at=at,
            updated_at=at,
        )

    def _upload_prompts(self, metadata: dict[str, str]) -> Prompts:
        raw = metadata.get(METADATA_KEY) or self.settings.default_request
        if not raw:
            raise MissingPrompt(
                "the upload carries no request: set the object metadata key 'maskgate' to the prompt JSON"
            )
        try:
            decoded = strict_json(raw)
        except ValueError as exc:
            raise InvalidRequest("the 'maskgate' object metadata is not valid JSON") from exc
        return parse_prompts(decoded)

    def _salvage(self, metadata: dict[str, str]) -> dict[str, Any]:
        """From a rejected upload's metadata, what can still reach the caller: a usable webhook URL
        and the metadata to echo (each only if it is valid on its own)."""
        try:
            raw = strict_json(metadata.get(METADATA_KEY) or "{}")
        except ValueError:
            return {}
        if not isinstance(raw, dict):
            return {}
        found: dict[str, Any] = {}
        try:
            echo = Prompts.model_validate({"prompt": "-", "metadata": raw.get("metadata", {})})
            found["metadata"] = echo.metadata
        except ValidationError:
            pass
        url = raw.get("webhook_url")
        try:
            if isinstance(url, str):
                found["webhook_url"] = check_outbound_url(url, local=self.settings.is_local)
        except RequestError:
            pass
        return found
