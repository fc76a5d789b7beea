"""``POST /v1/callbacks/wavespeed``: WaveSpeed's callbacks in, verified before anything is looked up
(its v3 signature: ``maskgate.wavespeed.signing``), never trusted otherwise.

A verified callback for a finished prediction resumes the job's waiting task; polling stays the
fallback, so a lost or refused callback costs only latency.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import ValidationError

from maskgate import crashpoints
from maskgate.contracts.job import Job, JobError, JobStatus, utcnow
from maskgate.contracts.steps import TaskResult
from maskgate.errors import InvalidRequest, InvalidTransition, JobNotFound, NotFound
from maskgate.observability import logger
from maskgate.stores.callback_log import CallbackLog
from maskgate.stores.jobs import JobStore
from maskgate.wavespeed.prediction import Prediction
from maskgate.wavespeed.signing import verify
from maskgate.workflow.executions import Workflow

Outcome = Literal["resumed", "failed", "late", "ignored", "duplicate"]


@dataclass(frozen=True)
class CallbackReceiver:
    """Acts on WaveSpeed's callbacks for the jobs' predictions."""

    jobs: JobStore
    workflow: Workflow
    log: CallbackLog
    secret: Callable[[], str]
    now: Callable[[], datetime] = utcnow

    def receive(self, job_id: str, *, token: str | None, headers: Mapping[str, str], body: bytes) -> Outcome:
        """Verify, dedupe, then resume (completed) or fail (failed) the job's waiting task."""
        msg_id = verify(self.secret(), headers=headers, body=body, now=self.now().timestamp())
        try:
            prediction = Prediction.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidRequest("the callback body is not a prediction") from exc
        if self.log.handled(msg_id):
            return "duplicate"
        job = self._bound_job(job_id, token, prediction.id)
        outcome = self._act(job, prediction)
        self.log.mark(msg_id)
        crashpoints.reached("callback.after_mark")
        return outcome

    def _bound_job(self, job_id: str, token: str | None, prediction_id: str) -> Job:
        """The job this callback is for: its URL token matches, and the prediction is its own (or
        is adopted: the job's submit is under way and no prediction is recorded yet)."""
        try:
            job = self.jobs.get(job_id)
        except JobNotFound:
            job = None
        if (
            job is None
            or job.callback_token is None
            or not hmac.compare_digest((token or "").encode(), job.callback_token.encode())
        ):
            raise NotFound(f"no job {job_id} waits for this callback")
        if job.prediction_id not in (None, prediction_id):
            raise NotFound(f"prediction {prediction_id} does not belong to job {job_id}")
        if job.prediction_id is None and job.submit_attempt is not None and not job.status.terminal:
            # the submit's answer was lost (a crash, a timeout after WaveSpeed accepted): adopt it
            try:
                job = self.jobs.record_prediction(job.id, prediction_id)
            except InvalidTransition:
                job = self.jobs.get(job.id)
            logger.info("prediction adopted from its callback", extra={"prediction_id": prediction_id})
        return job

    def _act(self, job: Job, prediction: Prediction) -> Outcome:
        if not prediction.finished:
            return "ignored"
        if job.status.terminal or job.task_token is None:
            return "late"
        if prediction.status == "completed":
            resumed = self.workflow.resume(
                job.task_token, TaskResult(job_id=job.id, prediction_id=prediction.id)
            )
            return "resumed" if resumed else "late"
        return self._failed(job.id, job.task_token, prediction.error or "the prediction failed")

    def _failed(self, job_id: str, token: str, message: str) -> Outcome:
        # The failure is recorded before the task fails: the message travels on the job, not in `cause`.
        try:
            self.jobs.transition(
                job_id, JobStatus.FAILED, error=JobError(type="upstream_failed", message=message)
            )
        except InvalidTransition:
            return "late"
        self.workflow.fail(token, error="UpstreamFailed", cause=message)
        logger.info("prediction failed (callback)", extra={"job_id": job_id})
        return "failed"
