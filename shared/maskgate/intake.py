"""The two ways in: a ``POST /v1/segmentations`` request and an object landing under ``uploads/``.

Both validate the prompts, check the image, record the job and start its workflow. An S3 upload that
fails validation is still recorded (``failed`` with its typed error) and its workflow started, so
the failure is visible in the API and reaches the caller's webhook: nothing is dropped.
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

from maskgate.errors import (
    InvalidImage,
    InvalidRequest,
    InvalidTransition,
    MissingPrompt,
    NotFound,
    RequestError,
)
from maskgate.ids import PATTERN, derived_job_id, new_job_id
from maskgate.images import MAX_IMAGE_BYTES, ImageInfo, inspect_image
from maskgate.jobs import ImageLocation, Job, JobError, JobStatus, JobStore, utcnow
from maskgate.models import Prompts, SegmentationCreate, UploadCreate, parse_prompts, strict_json
from maskgate.observability import logger, metrics
from maskgate.settings import Settings
from maskgate.storage import UPLOAD_PREFIX, MaskStore, StoredObject
from maskgate.urls import check_image_url, check_outbound_url
from maskgate.workflow import S3Record, UploadExpiries, Workflow

METADATA_KEY = "maskgate"
UPLOAD_GRACE_SECONDS = 60  # an upload that started just before the POST expired may still land


def decode_data_uri(uri: str) -> tuple[bytes, ImageInfo]:
    """Decode ``data:<type>;base64,<data>`` and identify the image by its bytes."""
    header, comma, payload = uri.partition(",")
    if not comma or not header.startswith("data:") or not header.endswith(";base64"):
        raise InvalidImage("a data URI image must look like data:image/png;base64,<data>")
    if len(payload) > (MAX_IMAGE_BYTES * 4) // 3 + 4:
        raise InvalidImage("the data URI is larger than the 20 MB image limit")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImage("the data URI is not valid base64") from exc
    return data, inspect_image(data)


@dataclass(frozen=True)
class Intake:
    jobs: JobStore
    masks: MaskStore
    workflow: Workflow
    settings: Settings
    now: Callable[[], datetime] = utcnow

    def accept_request(self, body: SegmentationCreate, *, tenant: str) -> Job:
        """Validate an API request, store its image, record the job and start it."""
        at = self.now()
        job_id = new_job_id(at)
        prompts = self._prompts(body, exclude={"image"})
        if body.image.startswith("data:"):
            data, info = decode_data_uri(body.image)
            if info.width and info.height:
                prompts.check_inside(info.width, info.height)
            key = self.masks.put_input(job_id, data, info)
            image = ImageLocation(
                bucket=self.masks.bucket, key=key, format=info.format, width=info.width, height=info.height
            )
        else:
            image = ImageLocation(url=check_image_url(body.image, local=self.settings.is_local))
        job = Job(
            id=job_id,
            tenant=tenant,
            status=JobStatus.QUEUED,
            source="api",
            request=prompts,
            image=image,
            created_at=at,
            updated_at=at,
        )
        self.jobs.create(job)
        try:
            self.workflow.start(job_id, created_at=at)
        except Exception:
            error = JobError(type="internal_error", message="the job's workflow could not be started")
            self.jobs.transition(job_id, JobStatus.FAILED, error=error)
            raise
        metrics.add_metric(name="JobAccepted", unit="Count", value=1)
        return job

    def register_upload(
        self, body: UploadCreate, *, tenant: str, expiries: UploadExpiries
    ) -> tuple[Job, dict[str, Any]]:
        """Record a job awaiting its image and return it with a presigned POST for
        ``uploads/<tenant>/<job_id>/<filename>``; a timer fails it if the upload never comes."""
        at = self.now()
        job_id = new_job_id(at)
        prompts = self._prompts(body, exclude={"filename", "content_type"})
        key = f"{UPLOAD_PREFIX}{tenant}/{job_id}/{body.filename}"
        job = Job(
            id=job_id,
            tenant=tenant,
            status=JobStatus.AWAITING_UPLOAD,
            source="upload",
            request=prompts,
            image=ImageLocation(bucket=self.masks.bucket, key=key),
            created_at=at,
            updated_at=at,
        )
        post = self.masks.presigned_post(
            key, content_type=body.content_type, seconds=self.settings.upload_seconds
        )
        self.jobs.create(job)
        expiries.start(job_id, seconds=self.settings.upload_seconds + UPLOAD_GRACE_SECONDS)
        return job, post

    def accept_upload(self, record: S3Record) -> Job | None:
        """Start (or, for a redelivered event, find) the job for one S3 ``ObjectCreated`` record."""
        key = unquote_plus(record.s3.object.key)
        if not key.startswith(UPLOAD_PREFIX):
            logger.info("object outside uploads/ ignored", extra={"key": key})
            return None
        registered = self._registered(key)
        if registered is not None:
            return self._accept_registered(registered, key)
        obj = record.s3.object
        write = obj.versionId or obj.sequencer or f"{obj.eTag}@{record.eventTime.isoformat()}"
        job_id = derived_job_id(record.eventTime, record.s3.bucket.name, key, str(write))
        at = self.now()
        try:
            stored: StoredObject | None = self.masks.head(key)
        except NotFound:
            stored = None  # deleted before we read it: still recorded, as invalid_image
        try:
            job = self._upload_job(job_id, key, stored, at)
        except RequestError as exc:
            logger.info("upload rejected", extra={"job_id": job_id, "error_type": exc.type})
            job = Job(
                id=job_id,
                tenant=self.settings.default_tenant,
                status=JobStatus.FAILED,
                source="upload",
                image=ImageLocation(bucket=self.masks.bucket, key=key),
                error=JobError(type=exc.type, message=exc.message),
                **self._salvage(stored.metadata if stored else {}),
                created_at=at,
                updated_at=at,
                finished_at=at,
            )
        if not self.jobs.create(job):
            logger.info("redelivered upload event: job exists", extra={"job_id": job_id})
        # a no-op when it already runs; resumes a start that crashed between the two writes
        self.workflow.start(job_id, created_at=job.created_at)
        return job

    def _prompts(self, body: Prompts, *, exclude: set[str]) -> Prompts:
        """The request's prompts alone, with its webhook URL checked (url_not_allowed)."""
        prompts = Prompts.model_validate(body.model_dump(exclude=exclude))
        if prompts.webhook_url:
            check_outbound_url(prompts.webhook_url, local=self.settings.is_local)
        return prompts

    def _registered(self, key: str) -> Job | None:
        """The job ``POST /v1/uploads`` registered for this key, if the key is one it handed out."""
        parts = key.split("/", 3)
        if len(parts) != 4 or not re.fullmatch(PATTERN, parts[2]):
            return None
        try:
            job = self.jobs.get(parts[2])
        except NotFound:
            return None
        return job if job.tenant == parts[1] and job.image is not None and job.image.key == key else None

    def _accept_registered(self, job: Job, key: str) -> Job:
        if job.status is JobStatus.AWAITING_UPLOAD:
            try:
                stored = self.masks.head(key)
                info = self.masks.inspect_upload(stored)
                if info.width and info.height and job.request is not None:
                    job.request.check_inside(info.width, info.height)
                image = ImageLocation(
                    bucket=self.masks.bucket,
                    key=key,
                    format=info.format,
                    width=info.width,
                    height=info.height,
                )
                job = self.jobs.transition(
                    job.id, JobStatus.QUEUED, only_from=JobStatus.AWAITING_UPLOAD, image=image
                )
            except RequestError as exc:
                error = JobError(type=exc.type, message=exc.message)
                job = self.jobs.transition(
                    job.id, JobStatus.FAILED, only_from=JobStatus.AWAITING_UPLOAD, error=error
                )
            except InvalidTransition:
                job = self.jobs.get(job.id)
        if job.status is JobStatus.FAILED and job.error is not None and job.error.type == "upload_expired":
            logger.info("upload arrived after its job expired", extra={"job_id": job.id})
            return job
        self.workflow.start(job.id, created_at=job.created_at)
        return job

    def _upload_job(self, job_id: str, key: str, stored: StoredObject | None, at: datetime) -> Job:
        if stored is None:
            raise InvalidImage("the upload was deleted before it could be read")
        prompts = self._upload_prompts(stored.metadata)
        info = self.masks.inspect_upload(stored)
        if info.width and info.height:
            prompts.check_inside(info.width, info.height)
        if prompts.webhook_url:
            check_outbound_url(prompts.webhook_url, local=self.settings.is_local)
        image = ImageLocation(
            bucket=self.masks.bucket, key=key, format=info.format, width=info.width, height=info.height
        )
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
