"""The workflow's Task steps: submit, poll, store, fail, notify.

Each takes its input model and the stores and clients it needs (keyword-only), and returns its
output model. Errors are raised typed; the state machine retries or catches them by class name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from maskgate.errors import (
    InvalidImage,
    InvalidTransition,
    JobRejected,
    OutputInvalid,
    PredictionTimedOut,
    UpstreamFailed,
    WebhookDeliveryFailed,
    error_type_for,
)
from maskgate.images import inspect_image
from maskgate.jobs import JobError, JobStatus, JobStore, Mask, utcnow
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
)

BACKOFF = 1.5
Clock = Callable[[], datetime]


def submit(
    step: SubmitInput, *, jobs: JobStore, wavespeed: WaveSpeedClient, masks: MaskStore, now: Clock = utcnow
) -> SubmitOutput:
    """Submit the job's prediction once; a retried step finds the recorded prediction id."""
    job = jobs.get(step.job_id)
    if job.status.terminal:
        raise JobRejected(f"job is already {job.status.value}")
    deadline_at = int(job.created_at.timestamp()) + step.deadline_seconds
    if job.prediction_id is None:
        if job.request is None or job.image is None:
            raise JobRejected("job has no request to submit")
        image_url = job.image.url or masks.presigned_get(str(job.image.key))
        prediction = wavespeed.submit(job.request, image_url=image_url)
        job = jobs.transition(job.id, JobStatus.SUBMITTED, prediction_id=prediction.id)
        metrics.add_metric(name="JobSubmitted", unit="Count", value=1)
        logger.info("prediction submitted", extra={"prediction_id": prediction.id})
    deadline_at = max(deadline_at, int(now().timestamp()) + step.wait_seconds)
    return SubmitOutput(
        job_id=job.id,
        prediction_id=str(job.prediction_id),
        wait_seconds=step.wait_seconds,
        attempt=0,
        deadline_at=deadline_at,
    )


def next_wait(current: int, *, maximum: int, remaining: float) -> int:
    """The next poll interval: grows by BACKOFF up to ``maximum``, never past the deadline."""
    grown = min(math.ceil(current * BACKOFF), maximum)
    return max(1, min(grown, math.ceil(remaining)))


def poll(step: PollInput, *, jobs: JobStore, wavespeed: WaveSpeedClient, now: Clock = utcnow) -> PollOutput:
    """Read the prediction: done, failed (raised), or the next wait until the deadline (raised)."""
    prediction = wavespeed.get_prediction(step.prediction_id)
    if prediction.status == "failed":
        raise UpstreamFailed(prediction.error or "the prediction failed")
    done = prediction.status == "completed"
    if prediction.status == "processing":
        try:
            jobs.transition(step.job_id, JobStatus.PROCESSING)
        except InvalidTransition:
            pass  # already processing (or finished by another path): nothing to record
    remaining = step.deadline_at - now().timestamp()
    if not done and remaining <= 0:
        raise PredictionTimedOut(f"the prediction did not finish within the deadline ({step.attempt} polls)")
    return PollOutput(
        job_id=step.job_id,
        prediction_id=step.prediction_id,
        done=done,
        attempt=step.attempt + 1,
        deadline_at=step.deadline_at,
        wait_seconds=next_wait(step.wait_seconds, maximum=step.max_wait_seconds, remaining=remaining),
    )


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
        jobs.transition(job.id, JobStatus.SUCCEEDED, masks=[m.model_dump(mode="json") for m in stored])
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
    settings: Settings,
    now: Clock = utcnow,
) -> NotifyOutput:
    """Deliver one attempt of the job's final webhook; raise WebhookDeliveryFailed to be retried."""
    job = jobs.get(step.job_id)
    if job.webhook_url is None:
        return NotifyOutput(job_id=job.id, outcome="no_webhook")
    if not job.status.terminal:
        raise InvalidTransition(f"job {job.id} is {job.status.value}; only finished jobs are notified")
    secrets_ = tenants.webhook_secrets(job.tenant)
    event = event_type(job.status)
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
    attempt = 1 + sum(1 for d in job.deliveries if d.event == event)
    result = sender.send(
        job.webhook_url,
        msg_id=webhook_id(job.id, event),
        body=body,
        secrets_=secrets_,
        event=event,
        attempt=attempt,
    )
    jobs.record_delivery(job.id, result)
    logger.info("webhook attempt", extra={"outcome": result.outcome, "status_code": result.status_code})
    if result.outcome == "retrying":
        raise WebhookDeliveryFailed(
            f"webhook attempt {attempt} failed ({result.status_code or result.error})"
        )
    if result.outcome == "delivered":
        metrics.add_metric(name="WebhookDelivered", unit="Count", value=1)
    return NotifyOutput(job_id=job.id, outcome=result.outcome)
