"""The job: its status ladder, what it holds, and the webhook attempts made for it (no I/O).

Every status change is made by the job store as a conditional write naming the states it may leave
(``may_leave_for``), so a job never goes backwards and a terminal job never changes again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from maskgate.contracts.prompts import Prompts
from maskgate.contracts.results import Results
from maskgate.ids import PATTERN

JobId = Annotated[str, StringConstraints(pattern=PATTERN)]


CacheOutcome = Literal["hit", "miss"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobStatus(StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    QUEUED = "queued"
    SUBMITTED = "submitted"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})
_ORDER = list(JobStatus)


def may_leave_for(target: JobStatus) -> list[JobStatus]:
    """The statuses a job may be in to move to ``target``: only earlier, non-terminal ones."""
    if target.terminal:
        return [s for s in JobStatus if not s.terminal]
    return list(_ORDER[: _ORDER.index(target)])


class JobError(BaseModel):
    """Why a job failed or was canceled."""

    model_config = ConfigDict(frozen=True)
    type: str = Field(description="The stable error type (see the README's error table): branch on this.")
    message: str = Field(description="What happened, for people.")


class ImageLocation(BaseModel):
    """Where the input image is: an object in our bucket, or a URL WaveSpeed fetches itself."""

    model_config = ConfigDict(frozen=True)
    bucket: str | None = None
    key: str | None = None
    url: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    filename: str | None = None  # the name a registered upload declared: data only, never in a key
    upload_key: str | None = None  # the object under uploads/ the validated copy at ``key`` was made from
    sha256: str | None = None  # the bytes' digest, where maskgate holds them (the result cache's key)


class Mask(BaseModel):
    model_config = ConfigDict(frozen=True)
    index: int
    key: str
    format: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None


class DeliveryAttempt(BaseModel):
    """One attempt to deliver the job's final webhook to one target (its webhook_url or an endpoint)."""

    model_config = ConfigDict(frozen=True)
    webhook_id: str = Field(description="The webhook-id header: the same on every attempt of the event.")
    event: str = Field(description="segmentation.succeeded, segmentation.failed or segmentation.canceled.")
    attempt: int = Field(description="1 for the first attempt, counting up.")
    at: datetime = Field(description="When the attempt started (UTC).")
    url: str = Field(description="Where it was sent.")
    endpoint_id: str | None = Field(
        default=None,
        description="The registered webhook endpoint it went to; null: the job's own webhook_url.",
    )
    status_code: int | None = Field(default=None, description="The receiver's HTTP status, if it answered.")
    latency_ms: int | None = Field(default=None, description="How long the attempt took.")
    error: str | None = Field(default=None, description="Why there was no answer (e.g. ConnectError).")
    retry_after: int | None = Field(
        default=None, description="Seconds the receiver asked to wait (Retry-After)."
    )
    response: str | None = Field(
        default=None,
        exclude=True,  # kept in a registered endpoint's attempt log only, not on the job
        description="The first 1 KiB of the receiver's answer, control characters escaped.",
    )
    next_attempt_at: datetime | None = Field(default=None, description="When the next attempt is due.")
    outcome: Literal["delivered", "retrying", "gave_up", "refused", "dead_lettered"] = Field(
        description="delivered (2xx); retrying (timeout, 429, 5xx); gave_up (another 4xx, e.g. 410); "
        "refused (the URL is not allowed); dead_lettered (every retry failed: in the dead-letter queue)."
    )


class Job(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: JobId
    tenant: str
    status: JobStatus
    source: Literal["api", "upload"]
    request: Prompts | None = None
    image: ImageLocation | None = None
    prediction_id: str | None = None
    task_token: str | None = Field(default=None, repr=False)
    masks: list[Mask] = []
    results: Results | None = None  # instances, found, the result files: set with the masks
    error: JobError | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    webhook_url: str | None = None
    metadata: dict[str, str] = {}
    deliveries: list[DeliveryAttempt] = []
    webhook_body: str | None = Field(default=None, repr=False)
    # The submit intent, written before the POST to WaveSpeed: a job that has one is never submitted
    # again (only the attempt that wrote it may take it back, when its POST surely did not land).
    submit_attempt: str | None = None
    submit_started_at: datetime | None = None
    callback_token: str | None = Field(default=None, repr=False)  # binds WaveSpeed's callback to the job
    # The webhook-id of a final event whose first attempt is under way; cleared when an attempt is
    # recorded, so one left behind by a killed invocation is found and delivered by the reconcile sweep.
    webhook_pending: str | None = None
    execution: str | None = None  # the workflow's execution when the reconcile sweep restarted it
    # The job's price against its tenant's monthly spend cap (maskgate.stores.spend): reserved with the
    # job's creation, then spent when WaveSpeed is called or released when it ends before that.
    price_micros: int | None = None
    charge: Literal["reserved", "spent", "released"] | None = None
    # True: it holds a place in its tenant's quotas (jobs in flight); False: its quotas were checked at
    # intake; None (a raw upload): Submit takes them
    quota_taken: bool | None = None
    cache: CacheOutcome | None = None  # hit: results reused; miss: computed; None: the cache did not apply

    @model_validator(mode="after")
    def _from_request(self) -> Job:
        """The webhook URL and the metadata echoed back are the request's, unless the job was given
        its own (a rejected upload keeps what could be salvaged)."""
        if self.request is not None:
            if self.webhook_url is None and self.request.webhook_url is not None:
                object.__setattr__(self, "webhook_url", self.request.webhook_url)
            if not self.metadata and self.request.metadata:
                object.__setattr__(self, "metadata", dict(self.request.metadata))
        return self
