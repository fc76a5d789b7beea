"""Workflow step Store: copy the finished masks into ``results/<job_id>/``, finish the job, and make
the first attempt of its webhook (as Notify does on the failure path): one state, one invocation less."""

from __future__ import annotations

from maskgate import crashpoints
from maskgate.contracts.job import JobStatus, Mask
from maskgate.contracts.steps import JobRef, StoreInput, StoreOutput
from maskgate.errors import InvalidImage, InvalidTransition, OutputInvalid, PredictionNotReady, UpstreamFailed
from maskgate.images import inspect_image
from maskgate.observability import logger, metrics
from maskgate.steps.notify import notify
from maskgate.stores.admission import Admission
from maskgate.stores.bucket import Bucket
from maskgate.stores.jobs import JobStore
from maskgate.wavespeed.client import WaveSpeedClient
from maskgate.webhooks.notifier import Notifier


def store(
    step: StoreInput,
    *,
    jobs: JobStore,
    wavespeed: WaveSpeedClient,
    bucket: Bucket,
    admission: Admission,
    notifier: Notifier,
) -> StoreOutput:
    """Store the masks, then make the first attempt of the job's webhook; its outcome is in the output."""
    stored = store_masks(step, jobs=jobs, wavespeed=wavespeed, bucket=bucket, admission=admission)
    notified = notify(JobRef(job_id=step.job_id), notifier=notifier)
    return stored.model_copy(update={"webhook": notified.outcome})


def store_masks(
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
