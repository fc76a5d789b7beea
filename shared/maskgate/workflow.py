"""The state machine's contract: each Task's input and output model, and starting an execution.

``statemachine/segmentation.asl.json`` passes exactly these fields (timings arrive as strings from
``DefinitionSubstitutions`` and are coerced here). The execution name is the job id, so a duplicate
start is a no-op.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maskgate.jobs import JobId

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient


class StepModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubmitInput(StepModel):
    job_id: JobId
    task_token: str = Field(min_length=1, repr=False)


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
    """What S3 sends the upload function: records, or the ``s3:TestEvent`` (no records) it sends once
    when a notification is configured. Records are parsed one by one (``records``), so one malformed
    record is refused alone instead of failing, and so retrying, the whole event."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    Records: list[Any] = []
    Event: str | None = None

    @property
    def ignored(self) -> str | None:
        """The event's name when it carries no records to act on (``s3:TestEvent``), else None."""
        return (self.Event or "no records") if not self.Records else None

    def records(self) -> tuple[list[S3Record], list[str]]:
        """The records that parse, and why each other one does not."""
        parsed: list[S3Record] = []
        refused: list[str] = []
        for i, raw in enumerate(self.Records):
            try:
                record = S3Record.model_validate(raw)
            except ValidationError as exc:
                refused.append(f"record {i}: {exc.error_count()} invalid fields")
                continue
            if record.eventTime.tzinfo is None:
                refused.append(f"record {i}: eventTime has no time zone")
            elif not record.eventName.startswith("ObjectCreated:"):
                refused.append(f"record {i}: {record.eventName[:100]} is not an object creation")
            else:
                parsed.append(record)
        return parsed, refused


@dataclass(frozen=True)
class Timings:
    """How long a job waits for its callback before polling, and how the waits grow to the deadline.

    They travel in the execution input because ASL takes wait lengths only as literals or paths,
    and the definition must stay valid JSON with the template's values substituted in.
    """

    initial_seconds: int = 10
    max_seconds: int = 30
    deadline_seconds: int = 900
    growth: float = 1.5

    def schedule(self) -> list[int]:
        """Listening windows after the first: grow by ``growth`` up to ``max``, past the deadline."""
        waits, current, total = [], self.initial_seconds, self.initial_seconds
        while total < self.deadline_seconds + self.max_seconds:
            current = min(math.ceil(current * self.growth), self.max_seconds)
            waits.append(current)
            total += current
        return waits


class Workflow:
    """Starts the segmentation state machine for a job and resumes its waiting tasks."""

    def __init__(self, *, state_machine_arn: str, client: SFNClient, timings: Timings | None = None) -> None:
        self._arn = state_machine_arn
        self._client = client
        self._timings = timings or Timings()

    def start(self, job_id: str, *, created_at: datetime) -> bool:
        """Start the job's execution; False if it was started before (same name)."""
        timings = self._timings
        payload: dict[str, Any] = {
            "job_id": job_id,
            "wait_seconds": timings.initial_seconds,
            "deadline_at": int(created_at.timestamp()) + timings.deadline_seconds,
            "attempt": 0,
            "schedule": timings.schedule(),
        }
        try:
            self._client.start_execution(stateMachineArn=self._arn, name=job_id, input=json.dumps(payload))
        except self._client.exceptions.ExecutionAlreadyExists:
            return False
        return True

    def stop(self, job_id: str, *, execution: str | None = None) -> bool:
        """Stop the job's execution (its first, named after the job, or the one the reconcile sweep
        restarted); False if it had already ended or never started."""
        arn = self._arn.replace(":stateMachine:", ":execution:", 1) + f":{execution or job_id}"
        try:
            self._client.stop_execution(
                executionArn=arn, error="JobCanceled", cause="canceled by the API client"
            )
        except self._client.exceptions.ExecutionDoesNotExist:
            return False
        return True

    def resume(self, token: str, result: TaskResult) -> bool:
        """Resume a waiting task with the finished prediction; False if it no longer waits."""
        try:
            self._client.send_task_success(taskToken=token, output=result.model_dump_json())
        except self._task_gone():
            return False
        return True

    def fail(self, token: str, *, error: str, cause: str) -> bool:
        """Fail a waiting task with a typed error name; False if it no longer waits."""
        try:
            self._client.send_task_failure(taskToken=token, error=error, cause=cause[:32000])
        except self._task_gone():
            return False
        return True

    def _task_gone(self) -> tuple[type[Exception], ...]:
        """What Step Functions answers for a token whose task no longer waits."""
        errors = self._client.exceptions
        return (errors.TaskTimedOut, errors.InvalidToken, errors.TaskDoesNotExist)


class UploadExpiries:
    """Starts the timer that fails a registered upload that never came (``upload_expired``)."""

    def __init__(self, *, state_machine_arn: str, client: SFNClient) -> None:
        self._arn = state_machine_arn
        self._client = client

    def start(self, job_id: str, *, seconds: int) -> None:
        payload = json.dumps({"job_id": job_id, "expires_in": seconds})
        try:
            self._client.start_execution(stateMachineArn=self._arn, name=job_id, input=payload)
        except self._client.exceptions.ExecutionAlreadyExists:
            pass
