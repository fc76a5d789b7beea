"""Every step's input and output: the state machines' contract, and the reconcile function's.

``statemachine/segmentation.asl.json`` passes exactly these fields (timings arrive as strings from
``DefinitionSubstitutions`` and are coerced here); ``statemachine/webhook-delivery.asl.json`` carries
a ``DeliveryStep`` between attempts; ``statemachine/upload-expiry.asl.json`` passes a ``JobRef``.
"""

from __future__ import annotations

import json
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from maskgate.contracts.job import JobId, JobStatus


class StepModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UploadedJob(StepModel):
    id: JobId
    status: JobStatus


class UploadOutput(StepModel):
    """The upload function's answer: the jobs of the event's records, or why it had none to act on."""

    jobs: list[UploadedJob] = []
    ignored: str | None = None  # the event's name when it carried no records (``s3:TestEvent``)


class SubmitInput(StepModel):
    job_id: JobId
    task_token: str = Field(min_length=1, repr=False)
    waiting: bool = False  # AwaitSlot: park in line for a WaveSpeed slot until woken


class PollInput(StepModel):
    job_id: JobId
    task_token: str = Field(min_length=1, repr=False)
    attempt: int = Field(ge=1)
    deadline_at: int  # unix seconds
    polls_allowed: int = Field(ge=1)


class TaskResult(StepModel):
    """What a waiting Submit or Poll task is resumed with: the finished prediction to store."""

    job_id: JobId
    prediction_id: str


class SubmitOutput(StepModel):
    job_id: JobId
    prediction_id: str | None  # None: a submit whose outcome is unknown yet (the callback adopts it)


class PollOutput(StepModel):
    job_id: JobId
    outcome: str


class StoreInput(StepModel):
    job_id: JobId
    prediction_id: str


class StoreOutput(StepModel):
    job_id: JobId
    masks: int
    webhook: str = "not_sent"  # the first attempt's outcome (NotifyOutput.outcome): Store notifies too


class CaughtError(BaseModel):
    """What a ``Catch`` with ``ResultPath: $.error`` puts in the state."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    Error: str
    Cause: str | None = None

    def message(self) -> str:
        """The human message inside a Lambda error's Cause (a JSON document), else the Cause itself."""
        if not self.Cause:
            return self.Error
        try:
            cause = json.loads(self.Cause)
        except ValueError:
            return self.Cause[:1000]
        if isinstance(cause, dict) and cause.get("errorMessage"):
            return str(cause["errorMessage"])[:1000]
        return self.Cause[:1000]


class FailInput(StepModel):
    job_id: JobId
    error: CaughtError


class JobRef(StepModel):
    job_id: JobId


class NotifyOutput(StepModel):
    job_id: JobId
    outcome: str


# --- the webhook delivery unit ---------------------------------------------------------------


class _Unit(BaseModel):
    """What a delivery unit delivers: a job's event (``job_id``) or a tenant's event that is about
    no job (``message_id``, its webhook-id, e.g. ``endpoint.disabled``); exactly one of the two."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    job_id: JobId | None = None
    message_id: str | None = Field(default=None, max_length=128)
    event: str
    step: int  # retries made so far; indexes the schedule
    endpoint_id: str | None = None  # the registered endpoint it delivers to; None: the job's webhook_url

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        if (self.job_id is None) == (self.message_id is None):
            raise ValueError("a delivery unit delivers either a job's event or a tenant event")
        if self.message_id is not None and self.endpoint_id is None:
            raise ValueError("a tenant event goes to a registered endpoint")
        return self


class DeliveryStep(_Unit):
    """The delivery unit's state between attempts (its execution input and the Deliver output)."""

    wait_seconds: int = 0
    done: bool = False


class DeliverInput(_Unit):
    """What the delivery unit's Deliver task is given."""


# --- the reconcile sweep -----------------------------------------------------------------------

Kind = Literal["stalled", "upload_expired", "slot", "webhook", "charge"]
Action = Literal["restart", "fail", "expire", "release", "notify", "start_unit", "dead_letter", "error"]


class ReconcileInput(BaseModel):
    """The function's event: the schedule sends ``{"dry_run": false}``; operators may narrow the grace."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dry_run: bool = False
    grace_seconds: int | None = Field(default=None, ge=0)  # None: the deployment's setting


class Repair(BaseModel):
    model_config = ConfigDict(frozen=True)
    job_id: str | None = None  # the job repaired
    message_id: str | None = None  # or the tenant event (its webhook-id) whose delivery was repaired
    kind: Kind
    action: Action
    detail: str = ""


class ReconcileReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    dry_run: bool
    checked: int  # jobs read in the window
    repairs: list[Repair]  # done, or (dry run) to be done
    counts: dict[str, int]
