"""Step Functions executions: the job's segmentation workflow (start, stop, resume or fail its waiting
task), the upload expiry timer, and the reconcile sweep's view of any state machine's runs.

A job's first execution is named after the job, so a duplicate start is a no-op.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from maskgate.contracts.steps import TaskResult
from maskgate.workflow.timings import Timings, execution_input

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

UPLOAD_GRACE_SECONDS = 60  # an upload that started just before its URL expired may still land


class Workflow:
    """Starts the segmentation state machine for a job and resumes its waiting tasks."""

    def __init__(self, *, state_machine_arn: str, client: SFNClient, timings: Timings | None = None) -> None:
        self._arn = state_machine_arn
        self._client = client
        self._timings = timings or Timings()

    def start(self, job_id: str, *, created_at: datetime) -> bool:
        """Start the job's execution; False if it was started before (same name)."""
        payload = execution_input(job_id, created_at=created_at, timings=self._timings)
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

    def wake(self, token: str) -> bool:
        """End a job's wait for a WaveSpeed slot (AwaitSlot): its workflow goes back to Submit;
        False if it no longer waits."""
        try:
            self._client.send_task_success(taskToken=token, output='{"woken": true}')
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


@dataclass(frozen=True)
class Executions:
    """Step Functions executions by state machine and name."""

    client: SFNClient

    def running(self, machine: str) -> frozenset[str]:
        """The names of the machine's running executions (ListExecutions, 1,000 a call)."""
        pages = self.client.get_paginator("list_executions").paginate(
            stateMachineArn=machine, statusFilter="RUNNING", PaginationConfig={"PageSize": 1000}
        )
        return frozenset(run["name"] for page in pages for run in page["executions"])

    def status(self, machine: str, name: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED…; None when there is no such execution."""
        try:
            return self.client.describe_execution(executionArn=_execution_arn(machine, name))["status"]
        except self.client.exceptions.ExecutionDoesNotExist:
            return None

    def start(self, machine: str, name: str, payload: str) -> bool:
        """Start one; False if an execution of that name exists (running or not)."""
        try:
            self.client.start_execution(stateMachineArn=machine, name=name, input=payload)
        except self.client.exceptions.ExecutionAlreadyExists:
            return False
        return True

    def stop(self, machine: str, name: str) -> None:
        self.client.stop_execution(
            executionArn=_execution_arn(machine, name), error="JobCanceled", cause="the job ended meanwhile"
        )


def _execution_arn(machine: str, name: str) -> str:
    return machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"
