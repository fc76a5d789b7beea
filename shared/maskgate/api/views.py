"""What the API shows of a job (``JobPublic``), with fresh presigned mask URLs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from maskgate.contracts.job import DeliveryAttempt, Job, JobError, JobStatus
from maskgate.stores.bucket import Bucket


class MaskPublic(BaseModel):
    index: int
    url: str
    format: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None


class JobPublic(BaseModel):
    id: str
    object: str = "segmentation"
    status: JobStatus
    source: str
    request: dict[str, Any] | None
    image: dict[str, Any] | None
    prediction_id: str | None
    masks: list[MaskPublic]
    error: JobError | None
    deliveries: list[DeliveryAttempt]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class PresignedPost(BaseModel):
    """POST the file as multipart/form-data to ``url`` with these ``fields`` (the file field last)."""

    url: str
    fields: dict[str, str]


class UploadPublic(JobPublic):
    upload: PresignedPost | None  # None once the image arrived (a replayed registration)


class JobPage(BaseModel):
    object: str = "list"
    data: list[JobPublic]
    next_cursor: str | None


def job_public(job: Job, *, bucket: Bucket) -> JobPublic:
    image = None
    if job.image is not None:
        image = job.image.model_dump(exclude_none=True, exclude={"bucket", "key"})
        if job.image.key:
            image["key"] = job.image.key
    return JobPublic(
        id=job.id,
        status=job.status,
        source=job.source,
        request=job.request.model_dump(mode="json") if job.request else None,
        image=image,
        prediction_id=job.prediction_id,
        masks=[
            MaskPublic(url=bucket.presigned_get(m.key), **m.model_dump(exclude={"key"})) for m in job.masks
        ],
        error=job.error,
        deliveries=job.deliveries,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
    )
