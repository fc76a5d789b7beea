"""The state machine's contract: each Task's input and output model, and starting an execution.

``statemachine/segmentation.asl.json`` passes exactly these fields (timings arrive as strings from
``DefinitionSubstitutions`` and are coerced here). The execution name is the job id, so a duplicate
start is a no-op.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from maskgate.jobs import JobId

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

Seconds = int


class StepModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubmitInput(StepModel):
    job_id: JobId
    wait_seconds: Seconds = Field(ge=1)
    deadline_seconds: Seconds = Field(ge=1)


class PollState(StepModel):
    """What Submit returns and Poll passes on around the wait loop."""

    job_id: JobId
    prediction_id: str
    wait_seconds: Seconds = Field(ge=1)
    attempt: int = Field(ge=0)
    deadline_at: int  # unix seconds


class SubmitOutput(PollState):
    pass


class PollInput(PollState):
    max_wait_seconds: Seconds = Field(ge=1)


class PollOutput(PollState):
    done: bool


class StoreInput(StepModel):
    job_id: JobId
    prediction_id: str


class StoreOutput(StepModel):
    job_id: JobId
    masks: int


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


class S3Bucket(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str


class S3Object(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    key: str
    size: int | None = None
    eTag: str | None = None
    sequencer: str | None = None
    versionId: str | None = None


class S3Entity(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    bucket: S3Bucket
    object: S3Object


class S3Record(BaseModel):
    """One S3 notification record: the fields maskgate reads (AWS's and moto's events both parse)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    eventSource: Literal["aws:s3"]
    eventName: str
    eventTime: datetime
    s3: S3Entity


class UploadEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    Records: list[S3Record]


class Workflow:
    """Starts the segmentation state machine for a job."""

    def __init__(self, *, state_machine_arn: str, client: SFNClient) -> None:
        self._arn = state_machine_arn
        self._client = client

    def start(self, job_id: str) -> bool:
        """Start the job's execution; False if it was started before (same name)."""
        payload: dict[str, Any] = {"job_id": job_id}
        try:
            self._client.start_execution(stateMachineArn=self._arn, name=job_id, input=json.dumps(payload))
        except self._client.exceptions.ExecutionAlreadyExists:
            return False
        return True
