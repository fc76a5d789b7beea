"""Workflow step Store: copy the finished masks into ``results/<job_id>/``, find their instances, finish
the job, and make the first attempt of its webhook (as Notify does on the failure path): one state, one
invocation less.

Instances need numpy and Pillow (the imaging layer, attached to Store alone): they are imported only
when a job asks for instances or the COCO file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from maskgate import crashpoints
from maskgate.contracts.job import Job, JobStatus, Mask
from maskgate.contracts.results import (
    ALL_OUTPUTS,
    Output,
    Results,
    Unavailable,
    coco_key,
    instances_key,
)
from maskgate.contracts.steps import JobRef, StoreInput, StoreOutput
from maskgate.errors import InvalidImage, InvalidTransition, OutputInvalid, PredictionNotReady, UpstreamFailed
from maskgate.images import inspect_image
from maskgate.observability import logger, metrics
from maskgate.steps.notify import notify
from maskgate.stores.admission import Admission
from maskgate.stores.bucket import Bucket
from maskgate.stores.jobs import JobStore
from maskgate.wavespeed.client import WaveSpeedClient
from maskgate.webhooks.notifier import Notifier, TenantTargets


def store(
    step: StoreInput,
    *,
    jobs: JobStore,
    wavespeed: WaveSpeedClient,
    bucket: Bucket,
    admission: Admission,
    notifier: Notifier,
) -> StoreOutput:
    """Store the masks, then make the first attempt of the job's webhook; its outcome is in the output.

    The succeeded write also keeps the webhook's body (one write of the job, not two), built from the
    tenant's targets read once for both."""
    read: list[TenantTargets] = []

    def ending(succeeded: Job) -> dict[str, str]:
        read.append(notifier.tenants.webhook_targets(succeeded.tenant))
        return notifier.ending_fields(succeeded, read[0])

    stored, finished = store_masks(
        step, jobs=jobs, wavespeed=wavespeed, bucket=bucket, admission=admission, ending=ending
    )
    ref = JobRef(job_id=step.job_id)
    notified = notify(ref, notifier=notifier, job=finished, read=read[0] if finished and read else None)
    return stored.model_copy(update={"webhook": notified.outcome})


def store_masks(
    step: StoreInput,
    *,
    jobs: JobStore,
    wavespeed: WaveSpeedClient,
    bucket: Bucket,
    admission: Admission,
    ending: Callable[[Job], dict[str, str]] | None = None,
) -> tuple[StoreOutput, Job | None]:
    """Copy the finished outputs into ``results/<job_id>/``, checked, and mark the job succeeded; the
    job as that write left it (None when this invocation did not finish it). ``ending`` gives more
    fields for that write from the job as it will be (Store's: the webhook body)."""
    job = jobs.get(step.job_id)
    if job.status is JobStatus.SUCCEEDED:  # a retried Store: the masks are kept, only notify is left
        return StoreOutput(job_id=job.id, masks=len(job.masks)), None
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
    outputs: list[Output] = list(job.request.outputs) if job.request else list(ALL_OUTPUTS)
    stored: list[Mask] = []
    downloaded: list[bytes] = []
    for index, url in enumerate(prediction.outputs):
        data = wavespeed.download(url)
        try:
            info = inspect_image(data)
        except InvalidImage as exc:
            raise OutputInvalid(f"output {index} is not an image: {exc.message}") from exc
        if info.format != wanted:
            raise OutputInvalid(f"output {index} is {info.format}, but {wanted} was asked for")
        downloaded.append(data)
        if "masks" not in outputs:
            continue
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
    results = store_results(job, downloaded, outputs=outputs, bucket=bucket)
    crashpoints.reached("store.after_masks")
    succeeded = job.model_copy(
        update={
            "status": JobStatus.SUCCEEDED,
            "prediction_id": step.prediction_id,
            "masks": stored,
            "results": results,
        }
    )
    fields: dict[str, Any] = {
        "prediction_id": step.prediction_id,
        "masks": [m.model_dump(mode="json") for m in stored],
        "results": results,
        **(ending(succeeded) if ending is not None else {}),
    }
    finished: Job | None = None
    try:
        finished = jobs.transition(job.id, JobStatus.SUCCEEDED, **fields)
    except InvalidTransition:
        logger.info("job finished elsewhere before its masks were stored", extra={"job_id": job.id})
    metrics.add_metric(name="MaskStored", unit="Count", value=len(stored))
    crashpoints.reached("store.after_succeeded")
    return StoreOutput(job_id=job.id, masks=len(stored)), finished


def store_results(job: Job, outputs_data: list[bytes], *, outputs: list[Output], bucket: Bucket) -> Results:
    """Find the instances of the masks and write instances.json and the COCO file, as asked."""
    if "instances" not in outputs and "coco" not in outputs:
        return Results(outputs=outputs)
    from maskgate.results.files import encoded, instances_file
    from maskgate.results.instances import NoAlpha, decode, instances  # numpy, Pillow: Store only

    cut_out = job.request.apply_mask if job.request else False
    try:
        masks = [decode(data, cut_out=cut_out) for data in outputs_data]
    except NoAlpha as exc:
        reason = f"{exc}: instances come from the mask, or from a cut-out image's alpha (png or webp)"
        return Results(outputs=outputs, unavailable=Unavailable(type="instances_unavailable", message=reason))
    except (OSError, ValueError) as exc:  # Pillow's errors for a file it cannot decode
        raise OutputInvalid(f"an output could not be decoded: {exc}") from exc
    found = instances(masks)
    height, width = masks[0].shape
    fields: dict[str, Any] = {"found": bool(found), "instance_count": len(found)}
    if "instances" in outputs:
        body = encoded(instances_file(job.id, width=width, height=height, instances=found))
        fields["instances_key"] = bucket.put_result(instances_key(job.id), body)
        fields["instances_bytes"] = len(body)
    if "coco" in outputs:
        fields["coco_key"] = bucket.put_result(
            coco_key(job.id), _coco(job, found, width=width, height=height)
        )
    metrics.add_metric(name="InstancesFound", unit="Count", value=len(found))
    return Results.model_validate({"outputs": outputs, **fields})


def _coco(job: Job, found: list[dict[str, Any]], *, width: int, height: int) -> bytes:
    from maskgate.results.coco import coco_file, file_name
    from maskgate.results.files import encoded

    document = coco_file(
        found,
        job_id=job.id,
        width=width,
        height=height,
        file_name=file_name(job),
        category=job.request.prompt if job.request else None,
        created=job.created_at,
    )
    return encoded(document)
