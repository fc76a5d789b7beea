"""Workflow step Submit (waits for its task token): record the token, submit the prediction at most once.

Errors are raised typed; the state machine retries or catches them by class name. The same function
runs the AwaitSlot state (``waiting``): a job in line for a WaveSpeed slot parks there until a
released slot is handed to it and it is woken.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from maskgate import crashpoints
from maskgate.cache.reuse import ResultCache
from maskgate.contracts.job import Job, JobError, JobStatus
from maskgate.contracts.steps import SubmitInput, SubmitOutput
from maskgate.errors import (
    AdmissionDeferred,
    AdmissionQueued,
    InvalidTransition,
    JobNotSubmittable,
    MaskgateError,
    PredictionTimedOut,
    UpstreamOutcomeUnknown,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from maskgate.observability import logger, metrics
from maskgate.settings import Settings
from maskgate.stores.admission import Admission
from maskgate.stores.bucket import Bucket
from maskgate.stores.jobs import JobStore
from maskgate.wavespeed.client import WaveSpeedClient
from maskgate.wavespeed.prediction import Prediction
from maskgate.workflow.executions import Workflow

if TYPE_CHECKING:
    from maskgate.steps.limits import Gate


# No submit intent is written this close to the job's deadline: the intent's write must land before
# Poll can read the job at the deadline, and a prediction started now could not finish in time anyway.
LAST_SUBMIT_SECONDS = 5


def submit(
    step: SubmitInput,
    *,
    jobs: JobStore,
    wavespeed: WaveSpeedClient,
    bucket: Bucket,
    settings: Settings,
    admission: Admission,
    workflow: Workflow,
    cache: ResultCache | None = None,
    new_attempt: Callable[[], str] = lambda: secrets.token_urlsafe(12),
    gate: Gate | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SubmitOutput:
    """Submit the prediction at most once, ever, recording the waiting task's token with the intent.

    The token is stored with the submit intent, before the POST, so that even an instant callback finds it
    (a retry that finds an intent stores its own); the task then waits for the callback (or times out into
    Poll). The intent is one conditional write (queued, no intent, no prediction), so no retry,
    re-invocation or concurrent Submit can pay twice: one that finds an intent never submits, and the
    prediction is adopted from its callback or a poll. Only a POST that surely did not land (connect
    error, 429, 503) takes its intent back. Before that, the result cache may finish the job
    (ResultReused) or have it wait for an identical job in flight (ResultPending); then the submit waits
    for the account's WaveSpeed tier: in line for a slot (AdmissionQueued, then AwaitSlot) or for the next
    minute (AdmissionDeferred).
    """
    if step.waiting:
        return await_slot(step, jobs=jobs, settings=settings, admission=admission, workflow=workflow, now=now)
    job = jobs.get(step.job_id)
    if job.status.terminal:
        raise JobNotSubmittable(f"job is already {job.status.value}")
    if job.prediction_id is not None or job.submit_attempt is not None:
        return _under_way(jobs.set_task_token(job.id, step.task_token), gate)
    if job.request is None or job.image is None:
        raise JobNotSubmittable("job has no request to submit")
    image_url = job.image.url or bucket.presigned_get(str(job.image.key))
    cached = cache.consult(job) if cache is not None else None
    _admit(job, admission=admission, gate=gate, settings=settings, now=now)
    if now() >= _deadline(job, settings) - timedelta(seconds=LAST_SUBMIT_SECONDS):
        # Poll ends an unsubmitted job at the deadline from one read: an intent written after that
        # read would POST for a job that is failing, and its paid prediction would be thrown away
        admission.release(job.id)
        raise PredictionTimedOut("the job was not submitted before its deadline")
    attempt, token = new_attempt(), secrets.token_urlsafe(24)
    try:
        job = jobs.claim_submit(
            job.id, attempt=attempt, callback_token=token, cache=cached, task_token=step.task_token
        )
    except InvalidTransition:
        return _claim_lost(jobs, admission, job.id, step.task_token)
    prediction = _post(
        jobs, admission, job, attempt, wavespeed, image_url, bound_callback_url(settings, job.id, token)
    )
    if prediction is None:
        _settle(job, gate)
        return SubmitOutput(job_id=job.id, prediction_id=None)
    crashpoints.reached("submit.after_post")
    metrics.add_metric(name="JobSubmitted", unit="Count", value=1)
    logger.info("prediction submitted", extra={"prediction_id": prediction.id})
    if gate is not None and job.charge == "reserved" and gate.ledger.settle(job, prediction_id=prediction.id):
        crashpoints.reached("submit.after_record")  # recorded and settled in one transaction
        return SubmitOutput(job_id=job.id, prediction_id=prediction.id)
    try:  # no ledger, or its transaction did not go through: record, then settle, on their own
        jobs.record_prediction(job.id, prediction.id)
    except InvalidTransition:
        # The job ended meanwhile (canceled, or timed out while this invocation outlived its wait):
        # the prediction is no longer ours to wait for.
        admission.release(job.id)
        logger.info("job finished while it was submitted", extra={"prediction_id": prediction.id})
    crashpoints.reached("submit.after_record")
    _settle(job, gate)
    return SubmitOutput(job_id=job.id, prediction_id=prediction.id)


def _settle(job: Job, gate: Gate | None) -> None:
    """WaveSpeed was called (or may have been): the job's reserved price is spent. Only once the
    prediction is recorded, so that nothing here can stand between a POST and its record; a Submit
    that dies first settles on its retry (or the job's end, or the reconcile sweep does)."""
    if gate is not None and job.charge == "reserved":
        gate.ledger.settle(job)


def _under_way(job: Job, gate: Gate | None) -> SubmitOutput:
    """Submitted before (a retry, or an invocation that outlived its wait): never again."""
    logger.info("submit already under way; waiting for its prediction", extra={"attempt": job.submit_attempt})
    _settle(job, gate)  # a Submit that died after its POST: its price is spent
    return SubmitOutput(job_id=job.id, prediction_id=job.prediction_id)


def _admit(
    job: Job, *, admission: Admission, gate: Gate | None, settings: Settings, now: Callable[[], datetime]
) -> None:
    """The tenant's quotas (a raw upload waits queued while they are full), then the WaveSpeed tier:
    in its fair line while every slot is taken; in line past its deadline, the job times out."""
    try:
        if gate is not None:
            gate.admit_queued(job)
        admission.admit(job.id, tenant=job.tenant)
    except AdmissionQueued:
        metrics.add_metric(name="AdmissionDeferred", unit="Count", value=1)  # waiting for the tier, in line
        if now() >= _deadline(job, settings):
            admission.release(job.id)  # out of the line: it will never start
            raise PredictionTimedOut("the job waited for a WaveSpeed slot past its deadline") from None
        raise
    except AdmissionDeferred:
        metrics.add_metric(name="AdmissionDeferred", unit="Count", value=1)
        raise


def await_slot(
    step: SubmitInput,
    *,
    jobs: JobStore,
    settings: Settings,
    admission: Admission,
    workflow: Workflow,
    now: Callable[[], datetime],
) -> SubmitOutput:
    """AwaitSlot: park the job in line until a released slot is handed to it and it is woken.

    The token is stored before the line is looked at, so a hand-over either finds it (and wakes this
    task) or happened before, and this task sees the slot and wakes itself; a job that finished
    meanwhile, or is out of time, goes back to Submit too, which ends it.
    """
    try:
        job = jobs.set_task_token(step.job_id, step.task_token)
    except InvalidTransition:
        job = None  # finished meanwhile
    ready = job is None or job.submit_attempt is not None or now() >= _deadline(job, settings)
    if job is not None and not ready:
        try:
            admission.take(job.id, tenant=job.tenant)
        except AdmissionQueued:
            logger.info("waiting in line for a WaveSpeed slot")
            return SubmitOutput(job_id=step.job_id, prediction_id=None)
    workflow.wake(step.task_token)
    return SubmitOutput(job_id=step.job_id, prediction_id=None)


def _deadline(job: Job, settings: Settings) -> datetime:
    return job.created_at + timedelta(seconds=settings.job_deadline_seconds)


def _claim_lost(jobs: JobStore, admission: Admission, job_id: str, task_token: str) -> SubmitOutput:
    """The intent could not be written: the job was canceled meanwhile, or another Submit claimed it
    (then this task waits for that prediction: its token is stored for the callback to find)."""
    try:
        job = jobs.set_task_token(job_id, task_token)
    except InvalidTransition:
        admission.release(job_id)
        raise JobNotSubmittable(f"job is already {jobs.get(job_id).status.value}") from None
    logger.info("another submit claimed the job; waiting for its prediction")
    return SubmitOutput(job_id=job_id, prediction_id=job.prediction_id)


def _post(
    jobs: JobStore,
    admission: Admission,
    job: Job,
    attempt: str,
    wavespeed: WaveSpeedClient,
    image_url: str,
    callback_url: str | None,
) -> Prediction | None:
    """The one POST of a claimed job: the prediction, or None when it may have landed unseen."""
    assert job.request is not None  # noqa: S101 (checked by the caller; narrows the type)
    try:
        return wavespeed.submit(job.request, image_url=image_url, webhook_url=callback_url)
    except (UpstreamRateLimited, UpstreamUnavailable):
        jobs.release_submit(job.id, attempt=attempt)  # surely did not land: a retry may submit
        raise
    except UpstreamRejected as exc:
        # Final for this job: record it now, so that even an invocation that outlived its task's wait
        # (whose raise nobody catches) ends the job with its real error; Poll then stops.
        admission.release(job.id)
        _record_failure(jobs, job.id, exc)
        raise
    except UpstreamOutcomeUnknown as exc:
        # It may have landed and be billed: keep the intent, never submit again. The callback adopts
        # the prediction; if none ever shows itself, Poll ends the job upstream_outcome_unknown.
        metrics.add_metric(name="SubmitOutcomeUnknown", unit="Count", value=1)
        logger.info(
            "submit outcome unknown; waiting for the prediction to show itself", extra={"why": exc.message}
        )
        return None


def _record_failure(jobs: JobStore, job_id: str, exc: MaskgateError) -> None:
    try:
        jobs.transition(job_id, JobStatus.FAILED, error=JobError(type=exc.type, message=exc.message))
    except InvalidTransition:
        pass  # finished already: it keeps its state


def bound_callback_url(settings: Settings, job_id: str, token: str) -> str | None:
    """Where WaveSpeed calls back for this job, with the job's own token (None: poll only)."""
    url = settings.callback_url(job_id)
    return None if url is None else f"{url}&token={token}"
