"""Starting the segmentation state machine for a job, resuming its waiting tasks, and the upload
expiry timer. The execution name is the job id, so a duplicate start is a no-op.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from maskgate.contracts.steps import TaskResult

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient


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
