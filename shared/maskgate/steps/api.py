"""The API's ways in: ``POST /v1/segmentations`` (the image as an https URL or a data URI) and
``POST /v1/uploads`` (a job awaiting the image its caller uploads straight to the bucket).

Both validate the prompts and the webhook URL and record the job; a request's image is checked (a
data URI decoded and validated whole, a URL checked as one WaveSpeed may fetch) and its workflow
started. Every re-run is safe: a job is written once (conditional on its id) and a workflow started
once (the execution is named after the job); with an ``Idempotency-Key`` a retry takes the job id
the key's first attempt claimed (``maskgate.ids.job_id_claim``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from maskgate import crashpoints
from maskgate.contracts.job import ImageLocation, Job, JobError, JobStatus, utcnow
from maskgate.contracts.prompts import Prompts, SegmentationCreate, UploadCreate
from maskgate.egress.url_check import check_image_url, check_outbound_url
from maskgate.errors import InvalidImage, JobNotFound, NotConfigured
from maskgate.ids import job_id_claim, new_job_id
from maskgate.images import MAX_IMAGE_BYTES, ImageInfo, validate_image
from maskgate.observability import logger, metrics
from maskgate.settings import Settings
from maskgate.stores.bucket import Bucket, upload_key
from maskgate.stores.jobs import JobStore
from maskgate.workflow.executions import UPLOAD_GRACE_SECONDS, UploadExpiries, Workflow

if TYPE_CHECKING:
    from maskgate.cache.reuse import ResultCache
    from maskgate.contracts.limits import DryRun
    from maskgate.steps.limits import Gate


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
class RequestIntake:
    """The API's creates: a segmentation request, or an upload registration."""

    jobs: JobStore
    bucket: Bucket
    workflow: Workflow
    settings: Settings
    now: Callable[[], datetime] = utcnow
    gate: Gate | None = None  # the tenant's quotas and spend cap (None: no limits)
    result_cache: Callable[[], ResultCache] | None = None  # built on a dry run's first use only

    def preview(self, body: SegmentationCreate, *, tenant: str) -> DryRun:
        """Validate the request as ``accept_request`` does and say what it would cost and meet; nothing
        is stored, created or spent."""
        prompts, decoded, _ = self._checked(body)
        if self.gate is None:
            raise NotConfigured("a dry run needs the tenants' limits")
        dry = self.gate.preview(tenant)
        if dry.cache == "off" or not prompts.cache:
            return dry.model_copy(update={"cache": "off"})
        if decoded is None or self.result_cache is None:
            return dry  # an image URL: maskgate never reads its bytes, so the cache never looks
        found = self.result_cache().preview(tenant, prompts, image_sha256=decoded[1].sha256)
        return dry.model_copy(update={"cache": found or "unknown"})

    def _checked(
        self, body: SegmentationCreate
    ) -> tuple[Prompts, tuple[bytes, ImageInfo] | None, str | None]:
        """The request's prompts and its image: decoded and validated (a data URI) or checked (a URL)."""
        prompts = self._prompts(body, exclude={"image"})
        decoded, url = None, None
        if body.image.startswith("data:"):
            decoded = decode_data_uri(body.image)
            prompts.check_inside(decoded[1].width or 0, decoded[1].height or 0)
        else:
            url = check_image_url(body.image, local=self.settings.is_local)
        return prompts, decoded, url

    def _create(self, job: Job) -> bool:
        """Record the job, within its tenant's quotas and spend cap (QuotaExceeded, SpendCapReached)."""
        return self.jobs.create(job) if self.gate is None else self.gate.create(job, self.jobs)

    def accept_request(self, body: SegmentationCreate, *, tenant: str) -> Job:
        """Validate an API request, store its image, record the job and start it."""
        prompts, decoded, url = self._checked(body)
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
        if not self._create(job):
            return self._start_api_job(self.jobs.get(job_id))  # a concurrent retry wrote it first
        crashpoints.reached("api.after_job")
        metrics.add_metric(name="JobAccepted", unit="Count", value=1)
        return self._start_api_job(job)

    def _request_image(self, job_id: str, decoded: tuple[bytes, ImageInfo]) -> ImageLocation:
        data, info = decoded
        key = self.bucket.put_input(job_id, data, info)
        return ImageLocation(
            bucket=self.bucket.name,
            key=key,
            format=info.format,
            width=info.width,
            height=info.height,
            sha256=info.sha256,  # the result cache's key: maskgate holds these bytes
        )

    def _adoptable(self, job_id: str) -> Job | None:
        """The job an earlier attempt with this Idempotency-Key wrote, if it got that far."""
        try:
            job = self.jobs.get(job_id)
        except JobNotFound:
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
            self._create(job)
        # idempotent (named after the job): a retry of a registration that crashed starts it too
        expiries.start(job_id, seconds=self.settings.upload_seconds + UPLOAD_GRACE_SECONDS)
        return job, post

    def _prompts(self, body: Prompts, *, exclude: set[str]) -> Prompts:
        """The request's prompts alone, with its webhook URL checked (url_not_allowed)."""
        prompts = Prompts.model_validate(body.model_dump(exclude=exclude))
        if prompts.webhook_url:
            check_outbound_url(prompts.webhook_url, local=self.settings.is_local)
        return prompts
