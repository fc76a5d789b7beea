"""The workflow's Task steps: submit, poll, store, fail, notify.

Each takes its input model and the stores and clients it needs (keyword-only), and returns its
output model. Errors are raised typed; the state machine retries or catches them by class name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from maskgate.admission import Admission
from maskgate.errors import (
    AdmissionDeferred,
    InvalidImage,
    InvalidTransition,
    JobRejected,
    MaskgateError,
    OutputInvalid,
    PredictionTimedOut,
    UpstreamFailed,
    UpstreamOutcomeUnknown,
    UpstreamRejected,
    error_type_for,
)
from maskgate.images import inspect_image
from maskgate.jobs import JobError, JobStatus, JobStore, Mask, utcnow
from maskgate.observability import logger, metrics
from maskgate.settings import Settings
from maskgate.storage import MaskStore
from maskgate.wavespeed import WaveSpeedClient
from maskgate.workflow import (
    FailInput,
    JobRef,
    PollInput,
    PollOutput,
    StoreInput,
    StoreOutput,
    SubmitInput,
    SubmitOutput,
    TaskResult,
    Workflow,
)

Clock = Callable[[], datetime]


def submit(
    step: SubmitInput,
    *,
    jobs: JobStore,
    wavespeed: WaveSpeedClient,
    masks: MaskStore,
    settings: Settings,
    admission: Admission,
) -> SubmitOutput:
    """Record the waiting task's token, then submit the prediction once (a retry finds its id).

    The token is stored before the submit so that even an instant callback finds it; the task then
    waits for the callback (or times out into Poll). The submit waits for the account's WaveSpeed
    tier first (AdmissionDeferred, retried by the workflow); the slot is given back when the
    prediction has finished (Store, Fail) or the job is canceled.
    """
    job = jobs.get(step.job_id)
    if job.status.terminal:
        raise JobRejected(f"job is already {job.status.value}")
    job = jobs.set_task_token(job.id, step.task_token)
    if job.prediction_id is None:
        if job.request is None or job.image is None:
            raise JobRejected("job has no request to submit")
        image_url = job.image.url or masks.presigned_get(str(job.image.key))
        try:
            admission.admit(job.id)
        except AdmissionDeferred:
            metrics.add_metric(name="AdmissionDeferred", unit="Count", value=1)
            raise
        try:
            prediction = wavespeed.submit(
                job.request, image_url=image_url, webhook_url=settings.callback_url(job.id)
            )
        except (UpstreamRejected, UpstreamOutcomeUnknown) as exc:
            # Final for this job: record it now, so that even an invocation that outlived its task's
            # wait (whose raise nobody catches) ends the job with its real error; Poll then stops.
            admission.release(job.id)
            _record_failure(jobs, job.id, exc)
            raise
        metrics.add_metric(name="JobSubmitted", unit="Count", value=1)
        logger.info("prediction submitted", extra={"prediction_id": prediction.id})
        try:
            job = jobs.transition(job.id, JobStatus.SUBMITTED, prediction_id=prediction.id)
        except InvalidTransition:
            # The job finished meanwhile: an instant callback resumed the task and Store ran, or this
            # invocation outlived its task's wait and the job ended on another path (canceled, or
            # timed out). Either way the prediction is no longer ours to wait for.
            admission.release(job.id)
            logger.info("job finished while it was submitted", extra={"prediction_id": prediction.id})
            return SubmitOutput(job_id=job.id, prediction_id=prediction.id)
    return SubmitOutput(job_id=job.id, prediction_id=str(job.prediction_id))


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
    job = jobs.set_task_token(step.job_id, step.task_token)
    if job.prediction_id is None:
        # Submit's wait covers its own invocation too: a slow one (a cold start, a slow WaveSpeed, a
        # wait for admission) times out before it has recorded the prediction, and is still running.
        # Keep listening; it records the prediction, and the callback or the next poll finds it.
        if now().timestamp() >= step.deadline_at or step.attempt >= step.polls_allowed:
            raise PredictionTimedOut(f"the job was not submitted within the deadline ({step.attempt} polls)")
        logger.info("no prediction recorded yet; listening again", extra={"attempt": step.attempt})
        return PollOutput(job_id=job.id, outcome="waiting")
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
    if now().timestamp() >= step.deadline_at or step.attempt >= step.polls_allowed:
        raise PredictionTimedOut(f"the prediction did not finish within the deadline ({step.attempt} polls)")
    return PollOutput(job_id=job.id, outcome="waiting")


def store(
    step: StoreInput, *, jobs: JobStore, wavespeed: WaveSpeedClient, masks: MaskStore, admission: Admission
) -> StoreOutput:
    """Copy the finished outputs into ``results/<job_id>/``, checked, and mark the job succeeded."""
    job = jobs.get(step.job_id)
    prediction = wavespeed.get_prediction(step.prediction_id)
    if prediction.status != "completed":
        raise UpstreamFailed(f"the prediction is {prediction.status}, not completed")
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
        key = masks.put_mask(job.id, index, data, extension=info.extension, content_type=info.mime)
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
    return JobRef(job_id=step.job_id)
