"""The workflow's Task steps: submit, poll, store, fail, notify.

Each takes its input model and the stores and clients it needs (keyword-only), and returns its
output model. Errors are raised typed; the state machine retries or catches them by class name.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from maskgate import crashpoints
from maskgate.callbacks import bound_callback_url
from maskgate.contracts.job import Job, JobError, JobStatus, Mask, utcnow
from maskgate.contracts.steps import (
    FailInput,
    JobRef,
    PollInput,
    PollOutput,
    StoreInput,
    StoreOutput,
    SubmitInput,
    SubmitOutput,
    TaskResult,
)
from maskgate.errors import (
    AdmissionDeferred,
    InvalidImage,
    InvalidTransition,
    JobRejected,
    MaskgateError,
    NotSubmitted,
    OutputInvalid,
    PredictionNotReady,
    PredictionTimedOut,
    UpstreamFailed,
    UpstreamOutcomeUnknown,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
    error_type_for,
)
from maskgate.images import inspect_image
from maskgate.observability import logger, metrics
from maskgate.settings import Settings
from maskgate.stores.admission import Admission
from maskgate.stores.bucket import Bucket
from maskgate.stores.jobs import JobStore
from maskgate.wavespeed.client import WaveSpeedClient
from maskgate.wavespeed.prediction import Prediction
from maskgate.workflow.executions import Workflow

Clock = Callable[[], datetime]


def submit(
    step: SubmitInput,
    *,
    jobs: JobStore,
    wavespeed: WaveSpeedClient,
    bucket: Bucket,
    settings: Settings,
    admission: Admission,
    new_attempt: Callable[[], str] = lambda: secrets.token_urlsafe(12),
) -> SubmitOutput:
    """Record the waiting task's token, then submit the prediction at most once, ever.

    The token is stored first so that even an instant callback finds it; the task then waits for the
    callback (or times out into Poll). Before the POST the job's submit intent is written (one
    conditional write: queued, no intent, no prediction), so no retry, re-invocation or concurrent
    Submit can pay twice: one that finds an intent never submits, and the prediction is adopted from
    its callback or a poll. Only a POST that surely did not land (connect error, 429, 503) takes its
    intent back. The submit waits for the account's WaveSpeed tier first (AdmissionDeferred).
    """
    job = jobs.get(step.job_id)
    if job.status.terminal:
        raise JobRejected(f"job is already {job.status.value}")
    job = jobs.set_task_token(job.id, step.task_token)
    if job.prediction_id is not None or job.submit_attempt is not None:
        # submitted before (this is a retry, or an invocation that outlived its wait): never again
        logger.info(
            "submit already under way; waiting for its prediction", extra={"attempt": job.submit_attempt}
        )
        return SubmitOutput(job_id=job.id, prediction_id=job.prediction_id)
    if job.request is None or job.image is None:
        raise JobRejected("job has no request to submit")
    image_url = job.image.url or bucket.presigned_get(str(job.image.key))
    try:
        admission.admit(job.id)
    except AdmissionDeferred:
        metrics.add_metric(name="AdmissionDeferred", unit="Count", value=1)
        raise
    attempt, token = new_attempt(), secrets.token_urlsafe(24)
    try:
        job = jobs.claim_submit(job.id, attempt=attempt, callback_token=token)
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
        raise JobRejected(f"job is already {job.status.value}")
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
        return _poll_unrecorded(job, step, out_of_time=out_of_time)
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
    raise JobRejected(f"job is already {job.status.value}")


def _poll_unrecorded(job: Job, step: PollInput, *, out_of_time: bool) -> PollOutput:
    """No prediction is recorded. With no submit under way the workflow goes back to Submit; with
    one, it may have landed: keep listening for its callback, never submit again."""
    if job.submit_attempt is None:
        if out_of_time:
            raise PredictionTimedOut(f"the job was not submitted within the deadline ({step.attempt} polls)")
        raise NotSubmitted("no submit is under way for this job")
    if out_of_time:
        raise UpstreamOutcomeUnknown(
            "WaveSpeed may have accepted the submit, but its prediction never showed itself by the "
            "deadline; it was not submitted again"
        )
    logger.info(
        "submit under way, prediction not recorded yet; listening again", extra={"attempt": step.attempt}
    )
    return PollOutput(job_id=job.id, outcome="waiting")


def store(
    step: StoreInput, *, jobs: JobStore, wavespeed: WaveSpeedClient, bucket: Bucket, admission: Admission
) -> StoreOutput:
    """Copy the finished outputs into ``results/<job_id>/``, checked, and mark the job succeeded."""
    job = jobs.get(step.job_id)
    if job.status is JobStatus.SUCCEEDED:  # a retried Store: the masks are kept, only notify is left
        return StoreOutput(job_id=job.id, masks=len(job.masks))
    prediction = wavespeed.get_prediction(step.prediction_id)
    if prediction.status == "failed":
        raise UpstreamFailed(prediction.error or "the prediction failed")
    if prediction.status != "completed":
        # its callback said completed; WaveSpeed's result API can lag it: read again later
        raise PredictionNotReady(f"the prediction reads {prediction.status}, not completed yet")
    admission.release(job.id)  # finished at WaveSpeed: its slot is free whatever the outputs hold
    if not prediction.outputs:
        raise OutputInvalid("the prediction completed without outputs")
    wanted = job.request.output_format if job.request else "png"
    stored: list[Mask] = []
    for index, url in enumerate(prediction.outputs):
        data = wavespeed.download(url)
        try:
            info = inspect_image(data)
        except InvalidImage as exc:
            raise OutputInvalid(f"output {index} is not an image: {exc.message}") from exc
        if info.format != wanted:
            raise OutputInvalid(f"output {index} is {info.format}, but {wanted} was asked for")
        key = bucket.put_mask(job.id, index, data, extension=info.extension, content_type=info.mime)
        stored.append(
            Mask(
                index=index,
                key=key,
                format=info.format,
                content_type=info.mime,
                size=len(data),
                width=info.width,
                height=info.height,
            )
        )
    crashpoints.reached("store.after_masks")
    try:
        jobs.transition(
            job.id,
            JobStatus.SUCCEEDED,
            prediction_id=step.prediction_id,
            masks=[m.model_dump(mode="json") for m in stored],
        )
    except InvalidTransition:
        logger.info("job finished elsewhere before its masks were stored", extra={"job_id": job.id})
    metrics.add_metric(name="MaskStored", unit="Count", value=len(stored))
    crashpoints.reached("store.after_succeeded")
    return StoreOutput(job_id=job.id, masks=len(stored))


def fail(step: FailInput, *, jobs: JobStore, admission: Admission) -> JobRef:
    """Record a caught workflow error as the job's typed failure (a finished job keeps its state),
    and give back the job's WaveSpeed slot (a no-op when it holds none)."""
    error = JobError(type=error_type_for(step.error.Error), message=step.error.message())
    # always: a prediction that failed through WaveSpeed's callback has its job failed already
    admission.release(step.job_id)
    try:
        jobs.transition(step.job_id, JobStatus.FAILED, error=error)
    except InvalidTransition:
        logger.info("job already finished; failure not recorded", extra={"error_type": error.type})
    else:
        metrics.add_metric(name="JobFailed", unit="Count", value=1)
        logger.info("job failed", extra={"error_type": error.type})
    crashpoints.reached("fail.after_record")
    return JobRef(job_id=step.job_id)
