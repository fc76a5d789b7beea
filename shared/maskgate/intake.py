"""The two ways in: a ``POST /v1/segmentations`` request and an object landing under ``uploads/``.

Both validate the prompts, check the image, record the job and start its workflow. An S3 upload that
fails validation is still recorded (``failed`` with its typed error) and its workflow started, so
the failure is visible in the API and reaches the caller's webhook: nothing is dropped. An upload is
validated whole and copied to ``inputs/`` pinned to the version that was read; the job points at the
copy, so WaveSpeed gets exactly the bytes that were checked.

Every re-run is safe: a job is written once (conditional on its id) and a workflow started once (the
execution is named after the job), so a run that crashed between the two is finished by its retry.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from pydantic import ValidationError

from maskgate import crashpoints
from maskgate.contracts.job import ImageLocation, Job, JobError, JobStatus, utcnow
from maskgate.contracts.prompts import Prompts, SegmentationCreate, UploadCreate, parse_prompts, strict_json
from maskgate.contracts.s3_events import S3Record, UploadEvent
from maskgate.egress.url_check import check_image_url, check_outbound_url
from maskgate.errors import (
    InvalidImage,
    InvalidRequest,
    InvalidTransition,
    MissingPrompt,
    NotFound,
    RequestError,
)
from maskgate.ids import PATTERN, derived_job_id, job_id_claim, new_job_id
from maskgate.images import MAX_IMAGE_BYTES, ImageInfo, validate_image
from maskgate.observability import logger, metrics
from maskgate.settings import Settings
from maskgate.stores.bucket import UPLOAD_PREFIX, Bucket, StoredObject, UploadChanged, upload_key
from maskgate.stores.jobs import JobStore
from maskgate.workflow.executions import UploadExpiries, Workflow

METADATA_KEY = "maskgate"
UPLOAD_GRACE_SECONDS = 60  # an upload that started just before the POST expired may still land


def decode_data_uri(uri: str) -> tuple[bytes, ImageInfo]:
    """Decode ``data:<type>;base64,<data>`` and validate the image it holds."""
    header, comma, payload = uri.partition(",")
    if not comma or not header.startswith("data:") or not header.endswith(";base64"):
        raise InvalidImage("a data URI image must look like data:image/png;base64,<data>")
    if len(payload) > (MAX_IMAGE_BYTES * 4) // 3 + 4:
        raise InvalidImage("the data URI is larger than the 20 MB image limit")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImage("the data URI is not valid base64") from exc
    return data, validate_image(data)


def _claimed_id(at: datetime) -> tuple[str, datetime, bool]:
    """A new job's id and creation time, and whether an earlier attempt with the same
    Idempotency-Key claimed them (so it may have written the job already)."""
    fresh = new_job_id(at)
    claim = job_id_claim.get()
    if claim is None:
        return fresh, at, False
    job_id, created_at = claim(fresh, at)
    return job_id, created_at, job_id != fresh


@dataclass(frozen=True)
class Intake:
    jobs: JobStore
    bucket: Bucket
    workflow: Workflow
    settings: Settings
    now: Callable[[], datetime] = utcnow

    # --- POST /v1/segmentations ----------------------------------------------------------------

    def accept_request(self, body: SegmentationCreate, *, tenant: str) -> Job:
        """Validate an API request, store its image, record the job and start it."""
        prompts = self._prompts(body, exclude={"image"})
        decoded, url = None, None
        if body.image.startswith("data:"):
            decoded = decode_data_uri(body.image)
            prompts.check_inside(decoded[1].width or 0, decoded[1].height or 0)
        else:
            url = check_image_url(body.image, local=self.settings.is_local)
        job_id, at, claimed_before = _claimed_id(self.now())
        adopted = self._adoptable(job_id) if claimed_before else None
        if adopted is not None:
            return self._start_api_job(adopted)
        job = Job(
            id=job_id,
            tenant=tenant,
            status=JobStatus.QUEUED,
            source="api",
            request=prompts,
            image=self._request_image(job_id, decoded) if decoded else ImageLocation(url=url),
            created_at=at,
            updated_at=at,
        )
        if not self.jobs.create(job):
            return self._start_api_job(self.jobs.get(job_id))  # a concurrent retry wrote it first
        crashpoints.reached("api.after_job")
        metrics.add_metric(name="JobAccepted", unit="Count", value=1)
        return self._start_api_job(job)

    def _request_image(self, job_id: str, decoded: tuple[bytes, ImageInfo]) -> ImageLocation:
        data, info = decoded
        key = self.bucket.put_input(job_id, data, info)
        return ImageLocation(
            bucket=self.bucket.name, key=key, format=info.format, width=info.width, height=info.height
        )

    def _adoptable(self, job_id: str) -> Job | None:
        """The job an earlier attempt with this Idempotency-Key wrote, if it got that far."""
        try:
            job = self.jobs.get(job_id)
        except NotFound:
            return None
        logger.info("retried Idempotency-Key: the first attempt's job is adopted", extra={"job_id": job_id})
        return job

    def _start_api_job(self, job: Job) -> Job:
        """Start the job's workflow (a no-op if it runs); a job that cannot start is failed."""
        try:
            self.workflow.start(job.id, created_at=job.created_at)
        except Exception:
            error = JobError(type="internal_error", message="the job's workflow could not be started")
            self.jobs.transition(job.id, JobStatus.FAILED, error=error)
            raise
        return job

    # --- POST /v1/uploads ----------------------------------------------------------------------

    def register_upload(
        self, body: UploadCreate, *, tenant: str, expiries: UploadExpiries
    ) -> tuple[Job, dict[str, Any]]:
        """Record a job awaiting its image and return it with a presigned POST for the key the server
        chose, ``uploads/<tenant>/<job_id>/image``; a timer fails it if the upload never comes."""
        prompts = self._prompts(body, exclude={"filename", "content_type"})
        job_id, at, claimed_before = _claimed_id(self.now())
        key = upload_key(tenant, job_id)
        post = self.bucket.presigned_post(
            key, content_type=body.content_type, seconds=self.settings.upload_seconds
        )
        job = self._adoptable(job_id) if claimed_before else None
        if job is None:
            job = Job(
                id=job_id,
                tenant=tenant,
                status=JobStatus.AWAITING_UPLOAD,
                source="upload",
                request=prompts,
                image=ImageLocation(bucket=self.bucket.name, key=key, filename=body.filename),
                created_at=at,
                updated_at=at,
            )
            self.jobs.create(job)
        # idempotent (named after the job): a retry of a registration that crashed starts it too
        expiries.start(job_id, seconds=self.settings.upload_seconds + UPLOAD_GRACE_SECONDS)
        return job, post

    # --- objects under uploads/ ----------------------------------------------------------------

    def accept_event(self, event: UploadEvent) -> list[Job]:
        """The jobs of an S3 event's records; a record that does not parse is logged and skipped."""
        records, refused = event.records()
        for reason in refused:
            logger.info("malformed S3 record ignored", extra={"reason": reason})
            metrics.add_metric(name="UploadRecordRefused", unit="Count", value=1)
        jobs = [self.accept_upload(record) for record in records]
        return [job for job in jobs if job is not None]

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
        except NotFound:
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
        except NotFound:
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
        if self.jobs.create(job):
            crashpoints.reached("on_upload.after_job")
            return job
        return self.jobs.get(job_id)  # a concurrent delivery of the same event wrote it first

    def _prompts(self, body: Prompts, *, exclude: set[str]) -> Prompts:
        """The request's prompts alone, with its webhook URL checked (url_not_allowed)."""
        prompts = Prompts.model_validate(body.model_dump(exclude=exclude))
        if prompts.webhook_url:
            check_outbound_url(prompts.webhook_url, local=self.settings.is_local)
        return prompts

    def _named_job(self, key: str) -> Job | None:
        """The job a key of the form ``uploads/<tenant>/<job_id>/...`` names, if it exists."""
        parts = key.split("/", 3)
        if len(parts) != 4 or not re.fullmatch(PATTERN, parts[2]):
            return None
        try:
            return self.jobs.get(parts[2])
        except NotFound:
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
        except NotFound as exc:
            raise InvalidImage("the upload was deleted before it could be read") from exc

    def _pin(self, job_id: str, stored: StoredObject, prompts: Prompts | None) -> ImageLocation:
        """Validate the whole upload, check the prompts fit it, and copy it to ``inputs/<job_id>/``
        conditional on the version that was validated; the location of that copy."""
        info = self.bucket.validate_upload(stored)
        if prompts is not None:
            prompts.check_inside(info.width or 0, info.height or 0)
        key = self.bucket.pin_input(job_id, stored, info)
        return ImageLocation(
            bucket=self.bucket.name, key=key, format=info.format, width=info.width, height=info.height
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
