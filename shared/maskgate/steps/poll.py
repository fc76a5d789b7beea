"""Workflow step Poll (waits for its task token): the callback is late, so read the prediction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from maskgate.contracts.job import Job, JobStatus, utcnow
from maskgate.contracts.steps import PollInput, PollOutput, TaskResult
from maskgate.errors import (
    InvalidTransition,
    JobNotSubmittable,
    NotSubmitted,
    PredictionTimedOut,
    UpstreamFailed,
    UpstreamOutcomeUnknown,
)
from maskgate.observability import logger, metrics
from maskgate.stores.jobs import JobStore
from maskgate.wavespeed.client import WaveSpeedClient
from maskgate.workflow.executions import Workflow

Clock = Callable[[], datetime]
# How long after writing its submit intent a Submit invocation may still be running (and POSTing):
# the Submit function's timeout (template.yaml; a test holds the two together) plus a margin.
SUBMIT_MAY_RUN_SECONDS = 35


def poll(
    step: PollInput, *, jobs: JobStore, wavespeed: WaveSpeedClient, workflow: Workflow, now: Clock = utcnow
) -> PollOutput:
    """The callback is late: read the prediction. Finished → resume this task; failed → raise;
    still running → keep the fresh token and listen again, until the deadline (raised)."""
    try:
        job = jobs.set_task_token(step.job_id, step.task_token)
    except InvalidTransition:
        return _poll_finished(jobs.get(step.job_id), step, workflow)
    out_of_time = now().timestamp() >= step.deadline_at or step.attempt >= step.polls_allowed
    if job.prediction_id is None:
        return _poll_unrecorded(job, step, out_of_time=out_of_time, now=now())
    prediction = wavespeed.get_prediction(job.prediction_id)
    if prediction.status == "failed":
        raise UpstreamFailed(prediction.error or "the prediction failed")
    if prediction.status == "completed":
        workflow.resume(step.task_token, TaskResult(job_id=job.id, prediction_id=prediction.id))
        metrics.add_metric(name="PredictionPolled", unit="Count", value=1)
        return PollOutput(job_id=job.id, outcome="completed")
    if prediction.status == "processing" and job.status is not JobStatus.PROCESSING:
        try:
            jobs.transition(job.id, JobStatus.PROCESSING)
        except InvalidTransition:
            pass  # already processing: nothing to record
    if out_of_time:
        raise PredictionTimedOut(f"the prediction did not finish within the deadline ({step.attempt} polls)")
    return PollOutput(job_id=job.id, outcome="waiting")


def _poll_finished(job: Job, step: PollInput, workflow: Workflow) -> PollOutput:
    """The job ended while this task waited: a succeeded one goes on to Store, which only notifies
    (a Store that finished the job and then kept failing came back here); others go to Notify."""
    if job.status is JobStatus.SUCCEEDED and job.prediction_id is not None:
        workflow.resume(step.task_token, TaskResult(job_id=job.id, prediction_id=job.prediction_id))
        return PollOutput(job_id=job.id, outcome="completed")
    raise JobNotSubmittable(f"job is already {job.status.value}")


def _poll_unrecorded(job: Job, step: PollInput, *, out_of_time: bool, now: datetime) -> PollOutput:
    """No prediction is recorded. With no submit under way the workflow goes back to Submit; with
    one, it may have landed: keep listening for its callback, never submit again. Past the deadline
    the job ends ``upstream_outcome_unknown``, but not while the Submit invocation that wrote the
    intent may still be running: its POST may yet land, and its answer or callback must find the job
    waiting (else a paid prediction would be thrown away)."""
    if job.submit_attempt is None:
        if out_of_time:
            raise PredictionTimedOut(f"the job was not submitted within the deadline ({step.attempt} polls)")
        raise NotSubmitted("no submit is under way for this job")
    started = job.submit_started_at
    if out_of_time and started is not None and (now - started).total_seconds() < SUBMIT_MAY_RUN_SECONDS:
        logger.info("past the deadline, but the submit may still be in flight; listening again")
        return PollOutput(job_id=job.id, outcome="waiting")
    if out_of_time:
        raise UpstreamOutcomeUnknown(
            "WaveSpeed may have accepted the submit, but its prediction never showed itself by the "
            "deadline; it was not submitted again"
        )
    logger.info(
        "submit under way, prediction not recorded yet; listening again", extra={"attempt": step.attempt}
    )
    return PollOutput(job_id=job.id, outcome="waiting")
