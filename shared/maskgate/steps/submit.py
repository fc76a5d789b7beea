"""Workflow step Submit (waits for its task token): record the token, submit the prediction at most once.

Errors are raised typed; the state machine retries or catches them by class name.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from maskgate import crashpoints
from maskgate.cache.reuse import ResultCache
from maskgate.contracts.job import Job, JobError, JobStatus
from maskgate.contracts.steps import SubmitInput, SubmitOutput
from maskgate.errors import (
    AdmissionDeferred,
    InvalidTransition,
    JobNotSubmittable,
    MaskgateError,
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


def submit(
    step: SubmitInput,
    *,
    jobs: JobStore,
    wavespeed: WaveSpeedClient,
    bucket: Bucket,
    settings: Settings,
    admission: Admission,
    cache: ResultCache | None = None,
    new_attempt: Callable[[], str] = lambda: secrets.token_urlsafe(12),
) -> SubmitOutput:
    """Record the waiting task's token, then submit the prediction at most once, ever.

    The token is stored first so that even an instant callback finds it; the task then waits for the
    callback (or times out into Poll). Before the POST the job's submit intent is written (one
    conditional write: queued, no intent, no prediction), so no retry, re-invocation or concurrent
    Submit can pay twice: one that finds an intent never submits, and the prediction is adopted from
    its callback or a poll. Only a POST that surely did not land (connect error, 429, 503) takes its
    intent back. The submit waits for the account's WaveSpeed tier first (AdmissionDeferred); before
    that, the result cache may finish the job (ResultReused) or have it wait for an identical job in
    flight (ResultPending).
    """
    job = jobs.get(step.job_id)
    if job.status.terminal:
        raise JobNotSubmittable(f"job is already {job.status.value}")
    job = jobs.set_task_token(job.id, step.task_token)
    if job.prediction_id is not None or job.submit_attempt is not None:
        # submitted before (this is a retry, or an invocation that outlived its wait): never again
        logger.info(
            "submit already under way; waiting for its prediction", extra={"attempt": job.submit_attempt}
        )
        return SubmitOutput(job_id=job.id, prediction_id=job.prediction_id)
    if job.request is None or job.image is None:
        raise JobNotSubmittable("job has no request to submit")
    image_url = job.image.url or bucket.presigned_get(str(job.image.key))
    cached = cache.consult(job) if cache is not None else None
    try:
        admission.admit(job.id)
    except AdmissionDeferred:
        metrics.add_metric(name="AdmissionDeferred", unit="Count", value=1)
        raise
    attempt, token = new_attempt(), secrets.token_urlsafe(24)
    try:
        job = jobs.claim_submit(job.id, attempt=attempt, callback_token=token, cache=cached)
    except InvalidTransition:
        return _claim_lost(jobs, admission, job.id)
    prediction = _post(
        jobs, admission, job, attempt, wavespeed, image_url, bound_callback_url(settings, job.id, token)
    )
    if prediction is None:
        return SubmitOutput(job_id=job.id, prediction_id=None)
    crashpoints.reached("submit.after_post")
    metrics.add_metric(name="JobSubmitted", unit="Count", value=1)
    logger.info("prediction submitted", extra={"prediction_id": prediction.id})
    try:
        jobs.record_prediction(job.id, prediction.id)
    except InvalidTransition:
        # The job ended meanwhile (canceled, or timed out while this invocation outlived its wait):
        # the prediction is no longer ours to wait for.
        admission.release(job.id)
        logger.info("job finished while it was submitted", extra={"prediction_id": prediction.id})
    crashpoints.reached("submit.after_record")
    return SubmitOutput(job_id=job.id, prediction_id=prediction.id)


def _claim_lost(jobs: JobStore, admission: Admission, job_id: str) -> SubmitOutput:
    """The intent could not be written: the job was canceled meanwhile, or another Submit claimed it."""
    job = jobs.get(job_id)
    if job.status.terminal:
        admission.release(job_id)
        raise JobNotSubmittable(f"job is already {job.status.value}")
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
