"""What the API shows: a job (``JobPublic``, with fresh presigned mask URLs), a webhook endpoint
(``WebhookEndpointPublic``, without its secrets), and the other answers."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from maskgate.api.examples import ENDPOINT_EXAMPLE, JOB_EXAMPLE, QUEUED_JOB_EXAMPLE
from maskgate.contracts.endpoints import Endpoint, EventName, Signature
from maskgate.contracts.job import CacheOutcome, DeliveryAttempt, Job, JobError, JobStatus
from maskgate.contracts.results import INLINE_LIMIT, Instance, Output, Results, Unavailable
from maskgate.errors import ObjectNotFound
from maskgate.stores.admission import Place
from maskgate.stores.attempt_log import EndpointStats, LoggedAttempt
from maskgate.stores.bucket import Bucket


class MaskPublic(BaseModel):
    """One mask image the job produced, stored under ``results/<job_id>/``."""

    index: int = Field(description="The mask's position in the prediction's outputs, from 0.")
    url: str = Field(description="A presigned S3 GET URL of the mask, fresh on every read (valid 1 hour).")
    format: str = Field(description="The image format: png, jpeg or webp (the request's output_format).")
    content_type: str = Field(description="The mask's media type, e.g. image/png.")
    size: int = Field(description="The mask file's size in bytes.")
    width: int | None = Field(default=None, description="Width in pixels.")
    height: int | None = Field(default=None, description="Height in pixels.")


class ResultsPublic(BaseModel):
    """What the job found, and links to its result files (all under results/<job_id>/)."""

    outputs: list[Output] = Field(description="The outputs the request asked for.")
    instance_count: int | None = Field(
        description="How many instances were found; null when instances were not made."
    )
    instances_url: str | None = Field(
        description="A presigned S3 GET URL of instances.json (fresh on every read, valid 1 hour): "
        '{"id", "width", "height", "found", "instances": [...]}; null unless instances were asked for.'
    )
    coco_url: str | None = Field(
        description="A presigned S3 GET URL of annotations.coco.json, a COCO instances file of the one "
        "image (segmentation as RLE, iscrowd 0, the text prompt as category, else object); null unless "
        "coco was asked for."
    )
    unavailable: Unavailable | None = Field(
        description="Why there are no instances although they were asked for (instances_unavailable: "
        "an apply_mask output without an alpha channel, e.g. jpeg)."
    )


class ImagePublic(BaseModel):
    """Where the job's input image is."""

    key: str | None = Field(
        default=None, description="The object in the deployment's bucket the job runs on (inputs/<job_id>/…)."
    )
    url: str | None = Field(
        default=None, description="The https URL WaveSpeed fetches itself (URL requests)."
    )
    format: str | None = Field(default=None, description="png, jpeg, webp, gif, bmp or tiff, from its bytes.")
    width: int | None = Field(default=None, description="Width in pixels, where known.")
    height: int | None = Field(default=None, description="Height in pixels, where known.")
    filename: str | None = Field(
        default=None, description="The filename a direct upload declared (data only)."
    )
    upload_key: str | None = Field(
        default=None, description="The object under uploads/ the validated copy at key was made from."
    )


class JobPublic(BaseModel):
    """A segmentation job as the API shows it."""

    model_config = ConfigDict(json_schema_extra={"examples": [JOB_EXAMPLE, QUEUED_JOB_EXAMPLE]})

    id: str = Field(description="The job id: seg_ and 26 time-sortable characters.")
    object: str = Field(default="segmentation", description="Always segmentation.")
    status: JobStatus = Field(
        description="awaiting_upload → queued → submitted → processing → succeeded | failed | canceled; "
        "the last three never change again."
    )
    source: str = Field(description="How the job came in: api (POST /v1/segmentations) or upload (S3).")
    request: dict[str, Any] | None = Field(
        description="The prompt payload as accepted, without the image (see SegmentationCreate)."
    )
    image: ImagePublic | None = Field(description="Where the input image is.")
    prediction_id: str | None = Field(description="WaveSpeed's prediction id, once it is known.")
    masks: list[MaskPublic] = Field(description="The stored masks (succeeded jobs).")
    cache: CacheOutcome | None = Field(
        description="The result cache's answer. hit: an identical earlier job of yours (same image bytes, "
        "same prompts, apply_mask, output_format and model) had succeeded, so its masks were copied to "
        "this job and WaveSpeed was not called (no prediction_id); miss: looked up, none found, so "
        "WaveSpeed computes this job (and later identical jobs may reuse it). null: the cache does not "
        "apply (an https image URL, which maskgate never reads; a request with cache false; a tenant "
        "with the cache turned off; a job rejected at intake), or the job has not reached the lookup "
        "yet (queued, or waiting for an identical job in flight).",
    )
    found: bool | None = Field(
        default=None,
        description="Whether anything was found: false for a finished prediction with an empty mask (the "
        "job still succeeded); null until the job succeeded, or when instances were not made.",
    )
    instances: list[Instance] | None = Field(
        default=None,
        description="Every object found: the 8-connected components of the masks of at least 16 pixels. "
        "GET /v1/segmentations/{job_id} shows them while instances.json is at most 32 KiB; above that, "
        "and in lists, null: read them from results.instances_url. [] when nothing was found.",
    )
    results: ResultsPublic | None = Field(
        default=None, description="Instance count and result files of a succeeded job; else null."
    )
    error: JobError | None = Field(description="Why the job failed or was canceled.")
    deliveries: list[DeliveryAttempt] = Field(description="Every attempt of the job's final webhook.")
    created_at: datetime = Field(description="When the job was accepted (UTC).")
    updated_at: datetime = Field(description="The job's last change (UTC).")
    finished_at: datetime | None = Field(description="When it reached a final status (UTC).")
    queue_position: int | None = Field(
        default=None,
        description="While the job waits for a WaveSpeed slot (status queued, every slot of the "
        "account's tier taken): its place in line, 1 being the next admitted, in the order the fair "
        "rule admits jobs (the next slot goes to the tenant holding the fewest). null when not waiting.",
        examples=[3],
    )
    estimated_start: datetime | None = Field(
        default=None,
        description="While the job waits for a WaveSpeed slot: when it should start (RFC 3339, UTC), "
        "from its place, the tier's slots and submits per minute, and how long a slot is held "
        "(measured at each release while jobs wait; 10 s until then). null when not waiting.",
        examples=["2026-12-04T10:15:42Z"],
    )


class PresignedPost(BaseModel):
    """POST the file as multipart/form-data to ``url`` with these ``fields`` (the file field last)."""

    url: str = Field(description="The bucket's URL to POST the form to.")
    fields: dict[str, str] = Field(
        description="Form fields to send as they are, before the file field (named file): they carry "
        "the key, the content type and the size limit, signed."
    )


class UploadPublic(JobPublic):
    """A registered direct upload: the job (awaiting_upload) and the form that uploads its image."""

    upload: PresignedPost | None = Field(
        description="The presigned POST; null once the image arrived (a replayed registration)."
    )


class JobPage(BaseModel):
    """One page of the tenant's jobs, newest first."""

    object: str = Field(default="list", description="Always list.")
    data: list[JobPublic] = Field(description="The jobs on this page.")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page.")


class Redelivery(BaseModel):
    """A redelivery of a job's final webhook, scheduled now."""

    webhook_id: str = Field(
        description="The webhook-id the delivery carries (the same as every earlier one)."
    )
    status: str = Field(description="Always scheduled: the delivery runs on its own, with retries.")


class WebhookSecret(BaseModel):
    """A new webhook signing secret for the tenant, shown once."""

    webhook_secret: str = Field(
        description="The new secret (whsec_…); webhooks are signed with it from now on."
    )
    previous_secret_valid_until: datetime = Field(
        description="Until then the previous secret signs alongside (both signatures in webhook-signature)."
    )


class WebhookEndpointPublic(BaseModel):
    """A registered webhook endpoint as the API shows it: never its secrets."""

    model_config = ConfigDict(json_schema_extra={"examples": [ENDPOINT_EXAMPLE]})

    id: str = Field(description="The endpoint id: ep_ and 16 hex digits.")
    object: str = Field(default="webhook_endpoint", description="Always webhook_endpoint.")
    url: str = Field(description="Where events are POSTed (checked when set and again at every send).")
    description: str = Field(description="What the endpoint is for, as you set it.")
    event_types: list[EventName] = Field(description="The event types it receives; empty: every type.")
    enabled: bool = Field(description="Whether it receives events; a disabled endpoint receives nothing.")
    rate_limit_per_second: int | None = Field(
        description="At most this many deliveries per second to it; null: no limit of its own."
    )
    metadata: dict[str, str] = Field(description="Your own string pairs, as you set them.")
    signature: Signature = Field(
        description="How its events are signed (Standard Webhooks): v1, HMAC-SHA256 with its whsec_ "
        "secret; v1a, Ed25519 with a private key that never leaves maskgate, verified with public_key."
    )
    public_key: str | None = Field(
        description="v1a: the whpk_ public key (base64 of the raw 32-byte Ed25519 key) that verifies its "
        "signatures; after a rotation, the new one (the previous one is shown by its /secret until it "
        "stops signing). null for v1."
    )
    created_at: datetime = Field(description="When it was registered (UTC).")
    updated_at: datetime = Field(description="Its last change (UTC).")
    disabled_at: datetime | None = Field(description="When maskgate disabled it (UTC); null otherwise.")
    disabled_reason: str | None = Field(
        description="Why maskgate disabled it; cleared when it is enabled again."
    )


class WebhookEndpointCreated(WebhookEndpointPublic):
    """A newly registered webhook endpoint, with its signing secret (shown in this answer only)."""

    secret: str | None = Field(
        description="v1: its signing secret (whsec_…): verify its events with it. Read it again with "
        "GET /v1/webhook-endpoints/{endpoint_id}/secret. v1a: null (its private key is never shown: "
        "verify with public_key)."
    )


class WebhookEndpointList(BaseModel):
    """The tenant's webhook endpoints (at most 20), oldest first."""

    object: str = Field(default="list", description="Always list.")
    data: list[WebhookEndpointPublic] = Field(description="Every endpoint of the tenant, oldest first.")


class WebhookEndpointSecret(BaseModel):
    """A webhook endpoint's signing secret (v1) or public keys (v1a), and until when the one a rotation
    replaced still signs."""

    secret: str | None = Field(
        description="v1: the secret its events are signed with (whsec_…). v1a: null, the private key is "
        "never shown."
    )
    public_key: str | None = Field(
        description="v1a: the public key (whpk_…) that verifies its signatures; null for v1."
    )
    previous_public_key: str | None = Field(
        description="v1a: the public key of the key pair a rotation replaced, while that one still signs "
        "alongside (until previous_secret_valid_until); null otherwise and for v1.",
    )
    previous_secret_valid_until: datetime | None = Field(
        description="Until then the secret or key pair it replaced signs alongside (both signatures in "
        "webhook-signature); null when no rotated-out one signs any more."
    )


class Health(BaseModel):
    """The API answers."""

    status: str = Field(description="Always ok.")


def job_public(
    job: Job, *, bucket: Bucket, place: Place | None = None, with_instances: bool = False
) -> JobPublic:
    """The job as the API shows it; ``place``: its place in line for a WaveSpeed slot, if waiting;
    ``with_instances``: its instances inline, read from instances.json when that is at most
    ``INLINE_LIMIT`` bytes (one job's GET, never a list)."""
    image = None
    if job.image is not None:
        image = job.image.model_dump(exclude_none=True, exclude={"bucket", "key"})
        if job.image.key:
            image["key"] = job.image.key
    return JobPublic(
        id=job.id,
        status=job.status,
        source=job.source,
        request=job.request.model_dump(mode="json") if job.request else None,
        image=ImagePublic(**image) if image is not None else None,
        prediction_id=job.prediction_id,
        cache=job.cache,
        masks=[
            MaskPublic(url=bucket.presigned_get(m.key), **m.model_dump(exclude={"key"})) for m in job.masks
        ],
        **_results_public(job, bucket=bucket, with_instances=with_instances),
        error=job.error,
        deliveries=job.deliveries,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
        queue_position=place.queue_position if place else None,
        estimated_start=place.estimated_start if place else None,
    )


def _results_public(job: Job, *, bucket: Bucket, with_instances: bool) -> dict[str, Any]:
    """The job's found, instances and results fields."""
    results = job.results
    if results is None:
        return {}

    def link(key: str | None) -> str | None:
        return bucket.presigned_get(key) if key else None

    return {
        "found": results.found,
        "instances": _inline_instances(results, bucket=bucket) if with_instances else None,
        "results": ResultsPublic(
            outputs=results.outputs,
            instance_count=results.instance_count,
            instances_url=link(results.instances_key),
            coco_url=link(results.coco_key),
            unavailable=results.unavailable,
        ),
    }


def _inline_instances(results: Results, *, bucket: Bucket) -> list[Instance] | None:
    if results.found is False:
        return []  # nothing found: no read needed
    if results.instances_key is None or (results.instances_bytes or 0) > INLINE_LIMIT:
        return None
    try:
        document = json.loads(bucket.get_result(results.instances_key))
    except ObjectNotFound:  # expired with the results/ lifecycle: the links say the same
        return None
    return [Instance.model_validate(item) for item in document["instances"]]


def endpoint_public(endpoint: Endpoint) -> WebhookEndpointPublic:
    """The endpoint without its secrets."""
    return WebhookEndpointPublic.model_validate(
        endpoint.model_dump(
            exclude={"tenant", "secret", "previous_secret", "previous_until", "disabled_notice_pending"}
        )
    )


def endpoint_created(endpoint: Endpoint) -> WebhookEndpointCreated:
    """A new endpoint with its v1 secret; a v1a endpoint's private key is never shown."""
    secret = endpoint.secret if endpoint.signature == "v1" else None
    return WebhookEndpointCreated(**endpoint_public(endpoint).model_dump(), secret=secret)


def endpoint_secret(endpoint: Endpoint, *, now: datetime) -> WebhookEndpointSecret:
    """v1: the endpoint's secret; v1a: its public key; and, while a rotated-out Ed25519 key still
    signs, its public key (a rotated-out v1 secret is the one the receiver already has)."""
    overlapping = len(endpoint.secrets(now)) > 1
    previous = None
    if overlapping and endpoint.previous_secret and endpoint.previous_secret.startswith("whsk_"):
        from maskgate.webhooks.signing import public_key  # imports cryptography: v1a only

        previous = public_key(endpoint.previous_secret)
    return WebhookEndpointSecret(
        secret=endpoint.secret if endpoint.signature == "v1" else None,
        public_key=endpoint.public_key,
        previous_public_key=previous,
        previous_secret_valid_until=endpoint.previous_until if overlapping else None,
    )


class WebhookEndpointDetail(WebhookEndpointPublic):
    """A registered webhook endpoint with how it has done over the last 24 hours."""

    stats: EndpointStats = Field(description="Its last 24 hours, from its attempt log.")


class AttemptPage(BaseModel):
    """A page of an endpoint's delivery attempts, newest first."""

    object: str = Field(default="list", description="Always list.")
    data: list[LoggedAttempt] = Field(description="The attempts, newest first.")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class RecoverRequest(BaseModel):
    """What to recover: every message whose last attempt to the endpoint failed since then."""

    model_config = ConfigDict(extra="forbid")
    since: AwareDatetime = Field(description="An RFC 3339 time with its offset, e.g. 2026-12-06T00:00:00Z.")


class Recovery(BaseModel):
    """Messages sent to the endpoint again, each through a delivery unit of its own."""

    endpoint_id: str = Field(description="The endpoint.")
    since: datetime = Field(description="The time asked for.")
    messages: int = Field(description="How many messages are being sent again (at most 1,000 per call).")
    status: str = Field(default="scheduled", description="Always scheduled: the deliveries run on their own.")


class Resend(BaseModel):
    """One message sent to the endpoint again, through a delivery unit of its own."""

    webhook_id: str = Field(description="The message's webhook-id (the same as on every earlier attempt).")
    endpoint_id: str = Field(description="The endpoint.")
    status: str = Field(default="scheduled", description="Always scheduled: the delivery runs on its own.")
