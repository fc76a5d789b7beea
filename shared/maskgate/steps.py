"""The workflow's Task steps: submit, poll, store, fail, notify.

Each takes its input model and the stores and clients it needs (keyword-only), and returns its
output model. Errors are raised typed; the state machine retries or catches them by class name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from maskgate.deliveries import DeliverInput, DeliveryStep, DeliveryUnits, next_wait
from maskgate.errors import (
    Conflict,
    InvalidImage,
    InvalidTransition,
    JobRejected,
    MaskgateError,
    NotFound,
    OutputInvalid,
    PredictionTimedOut,
    UpstreamFailed,
    error_type_for,
)
from maskgate.images import inspect_image
from maskgate.jobs import DeliveryAttempt, Job, JobError, JobStatus, JobStore, Mask, utcnow
from maskgate.observability import logger, metrics
from maskgate.settings import Settings
from maskgate.storage import MaskStore
from maskgate.tenants import TenantStore
from maskgate.wavespeed import WaveSpeedClient
from maskgate.webhooks import WebhookSender, build_body, event_type, webhook_id
from maskgate.workflow import (
    FailInput,
    JobRef,
    NotifyOutput,
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
) -> SubmitOutput:
    """Record the waiting task's token, then submit the prediction once (a retry finds its id).

    The token is stored before the submit so that even an instant callback finds it; the task then
    waits for the callback (or times out into Poll).
    """
    job = jobs.get(step.job_id)
    if job.status.terminal:
        raise JobRejected(f"job is already {job.status.value}")
    job = jobs.set_task_token(job.id, step.task_token)
    if job.prediction_id is None:
        if job.request is None or job.image is None:
            raise JobRejected("job has no request to submit")
        image_url = job.image.url or masks.presigned_get(str(job.image.key))
        prediction = wavespeed.submit(
            job.request, image_url=image_url, webhook_url=settings.callback_url(job.id)
        )
        metrics.add_metric(name="JobSubmitted", unit="Count", value=1)
        logger.info("prediction submitted", extra={"prediction_id": prediction.id})
        try:
            job = jobs.transition(job.id, JobStatus.SUBMITTED, prediction_id=prediction.id)
        except InvalidTransition:
            # An instant callback already resumed the task and the job finished: nothing to record.
            return SubmitOutput(job_id=job.id, prediction_id=prediction.id)
    return SubmitOutput(job_id=job.id, prediction_id=str(job.prediction_id))


def poll(
    step: PollInput, *, jobs: JobStore, wavespeed: WaveSpeedClient, workflow: Workflow, now: Clock = utcnow
) -> PollOutput:
    """The callback is late: read the prediction. Finished → resume this task; failed → raise;
    still running → keep the fresh token and listen again, until the deadline (raised)."""
    job = jobs.set_task_token(step.job_id, step.task_token)
    if job.prediction_id is None:
        raise UpstreamFailed("the job has no prediction to poll")
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


def store(step: StoreInput, *, jobs: JobStore, wavespeed: WaveSpeedClient, masks: MaskStore) -> StoreOutput:
    """Copy the finished outputs into ``results/<job_id>/``, checked, and mark the job succeeded."""
    job = jobs.get(step.job_id)
    prediction = wavespeed.get_prediction(step.prediction_id)
    if prediction.status != "completed":
        raise UpstreamFailed(f"the prediction is {prediction.status}, not completed")
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


def fail(step: FailInput, *, jobs: JobStore) -> JobRef:
    """Record a caught workflow error as the job's typed failure (a finished job keeps its state)."""
    error = JobError(type=error_type_for(step.error.Error), message=step.error.message())
    try:
        jobs.transition(step.job_id, JobStatus.FAILED, error=error)
    except InvalidTransition:
        logger.info("job already finished; failure not recorded", extra={"error_type": error.type})
    else:
        metrics.add_metric(name="JobFailed", unit="Count", value=1)
        logger.info("job failed", extra={"error_type": error.type})
    return JobRef(job_id=step.job_id)


def notify(
    step: JobRef,
    *,
    jobs: JobStore,
    tenants: TenantStore,
    sender: WebhookSender,
    units: DeliveryUnits,
    settings: Settings,
    now: Clock = utcnow,
) -> NotifyOutput:
    """The first attempt of the job's final webhook; a retryable failure starts its delivery unit."""
    job = jobs.get(step.job_id)
    if job.webhook_url is None:
        return NotifyOutput(job_id=job.id, outcome="no_webhook")
    if not job.status.terminal:
        raise InvalidTransition(f"job {job.id} is {job.status.value}; only finished jobs are notified")
    if not settings.public_api_url:
        raise MaskgateError("MASKGATE_PUBLIC_API_URL is not set: webhook mask links cannot be built")
    secrets_ = tenants.webhook_secrets(job.tenant)
    body = job.webhook_body or jobs.set_webhook_body(
        job.id,
        build_body(
            job,
            api_url=settings.public_api_url,
            secret=secrets_[0],
            now=now(),
            link_seconds=settings.mask_link_seconds,
        ),
    )
    result = attempt_delivery(job, body=body, secrets_=secrets_, sender=sender)
    if result.outcome == "retrying":
        return NotifyOutput(
            job_id=job.id,
            outcome=_schedule(
                job, result, 0, jobs=jobs, units=units, settings=settings, now=now, name=result.webhook_id
            ),
        )
    jobs.record_delivery(job.id, result)
    return NotifyOutput(job_id=job.id, outcome=result.outcome)


def deliver(
    step: DeliverInput,
    *,
    jobs: JobStore,
    tenants: TenantStore,
    sender: WebhookSender,
    units: DeliveryUnits,
    settings: Settings,
    now: Clock = utcnow,
) -> DeliveryStep:
    """One scheduled retry of a delivery unit: delivered, refused, the next wait, or dead-lettered."""
    job = jobs.get(step.job_id)
    if job.webhook_url is None or job.webhook_body is None:
        raise NotFound(f"job {job.id} has no webhook to deliver")
    result = attempt_delivery(
        job, body=job.webhook_body, secrets_=tenants.webhook_secrets(job.tenant), sender=sender
    )
    if result.outcome != "retrying":
        jobs.record_delivery(job.id, result)
        return DeliveryStep(job_id=job.id, event=step.event, step=step.step, done=True)
    wait = next_wait(settings.webhook_schedule, step.step + 1, retry_after=result.retry_after)
    if wait is None:
        jobs.record_delivery(job.id, result.model_copy(update={"outcome": "dead_lettered"}))
        units.dead_letter(job_id=job.id, event=step.event, webhook_id=result.webhook_id, last=result)
        metrics.add_metric(name="WebhookDeadLettered", unit="Count", value=1)
        return DeliveryStep(job_id=job.id, event=step.event, step=step.step, done=True)
    jobs.record_delivery(
        job.id, result.model_copy(update={"next_attempt_at": now() + timedelta(seconds=wait)})
    )
    return DeliveryStep(job_id=job.id, event=step.event, step=step.step + 1, wait_seconds=wait)


def cancel(
    job: Job,
    *,
    jobs: JobStore,
    workflow: Workflow,
    units: DeliveryUnits,
    tenants: TenantStore,
    api_url: str,
    settings: Settings,
    now: Clock = utcnow,
) -> Job:
    """Cancel an unfinished job: mark it canceled (Conflict if it already finished), stop its
    execution, and send ``segmentation.canceled`` through a delivery unit."""
    canceled = jobs.transition(
        job.id, JobStatus.CANCELED, error=JobError(type="canceled", message="canceled by the API client")
    )
    workflow.stop(job.id)
    metrics.add_metric(name="JobCanceled", unit="Count", value=1)
    if canceled.webhook_url is None:
        return canceled
    secret = tenants.webhook_secrets(canceled.tenant)[0]
    jobs.set_webhook_body(
        canceled.id,
        build_body(
            canceled, api_url=api_url, secret=secret, now=now(), link_seconds=settings.mask_link_seconds
        ),
    )
    event = event_type(canceled.status)
    units.start(name=webhook_id(canceled.id, event), job_id=canceled.id, event=event, step=0, wait_seconds=0)
    return canceled


def expire_upload(
    step: JobRef,
    *,
    jobs: JobStore,
    tenants: TenantStore,
    sender: WebhookSender,
    units: DeliveryUnits,
    settings: Settings,
) -> NotifyOutput:
    """A registered upload's time is up: fail the job as upload_expired if it still waits, and notify."""
    error = JobError(
        type="upload_expired", message="the image was not uploaded before the upload URL expired"
    )
    try:
        jobs.transition(step.job_id, JobStatus.FAILED, only_from=JobStatus.AWAITING_UPLOAD, error=error)
    except InvalidTransition:
        return NotifyOutput(job_id=step.job_id, outcome="uploaded")
    metrics.add_metric(name="UploadExpired", unit="Count", value=1)
    return notify(step, jobs=jobs, tenants=tenants, sender=sender, units=units, settings=settings)


def redeliver(job: Job, *, units: DeliveryUnits) -> str:
    """Send the job's final webhook again now, with the same webhook-id and body; return the id."""
    if job.webhook_url is None or job.webhook_body is None or not job.status.terminal:
        raise Conflict(f"job {job.id} has no final webhook to redeliver")
    event = event_type(job.status)
    msg_id = webhook_id(job.id, event)
    units.start(
        name=f"{msg_id}-r{len(job.deliveries) + 1}", job_id=job.id, event=event, step=0, wait_seconds=0
    )
    return msg_id


def attempt_delivery(job: Job, *, body: str, secrets_: list[str], sender: WebhookSender) -> DeliveryAttempt:
    """One signed attempt of the job's final event, numbered after the ones recorded before it."""
    event = event_type(job.status)
    number = 1 + sum(1 for d in job.deliveries if d.event == event)
    result = sender.send(
        str(job.webhook_url),
        msg_id=webhook_id(job.id, event),
        body=body,
        secrets_=secrets_,
        event=event,
        attempt=number,
    )
    logger.info("webhook attempt", extra={"outcome": result.outcome, "status_code": result.status_code})
    if result.outcome == "delivered":
        metrics.add_metric(name="WebhookDelivered", unit="Count", value=1)
    return result


def _schedule(
    job: Job,
    result: DeliveryAttempt,
    step: int,
    *,
    jobs: JobStore,
    units: DeliveryUnits,
    settings: Settings,
    now: Clock,
    name: str,
) -> str:
    wait = next_wait(settings.webhook_schedule, step, retry_after=result.retry_after)
    if wait is None:
        jobs.record_delivery(job.id, result.model_copy(update={"outcome": "gave_up"}))
        return "gave_up"
    jobs.record_delivery(
        job.id, result.model_copy(update={"next_attempt_at": now() + timedelta(seconds=wait)})
    )
    units.start(name=name, job_id=job.id, event=result.event, step=step, wait_seconds=wait)
    return "scheduled"
