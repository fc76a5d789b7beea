"""The thin event body a caller's webhook receives, and the ids that name it.

The body is built once per (job, event), stored on the job, and sent byte-identical on every retry;
only ``webhook-timestamp`` and the signature change. ``webhook-id`` is stable per job and event so
receivers can dedupe.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Literal, get_args

from maskgate.contracts.endpoints import Endpoint
from maskgate.contracts.job import Job, JobStatus
from maskgate.ids import PATTERN
from maskgate.webhooks.signing import mask_token, result_token

EventType = Literal["segmentation.succeeded", "segmentation.failed", "segmentation.canceled"]


def event_type(status: JobStatus) -> EventType:
    return {
        JobStatus.SUCCEEDED: "segmentation.succeeded",
        JobStatus.CANCELED: "segmentation.canceled",
    }.get(status, "segmentation.failed")  # type: ignore[return-value]


def webhook_id(job_id: str, event: str) -> str:
    """Stable per job and event: every retry and redelivery of it carries the same id."""
    return f"msg_{job_id.removeprefix('seg_')}_{event.rsplit('.', 1)[-1]}"


def job_event_of(msg_id: str) -> tuple[str, EventType] | None:
    """The (job id, event type) a job event's webhook-id names, as ``webhook_id`` made it; None for
    any other id (an ``endpoint.disabled`` notice, or no webhook-id of ours)."""
    _, _, rest = msg_id.partition("msg_")
    job, _, outcome = rest.rpartition("_")
    event = f"segmentation.{outcome}"
    if not msg_id.startswith("msg_") or event not in get_args(EventType):
        return None
    job_id = f"seg_{job}"
    if not re.fullmatch(PATTERN, job_id) or webhook_id(job_id, event) != msg_id:
        return None
    return job_id, event  # type: ignore[return-value]


def endpoint_disabled_body(endpoint: Endpoint, *, now: datetime) -> tuple[str, str]:
    """The ``endpoint.disabled`` event and its webhook-id, told to the tenant's other endpoints: both
    made from the disabled endpoint alone, so telling them again makes the same bytes and id."""
    at = endpoint.disabled_at or now
    event = {
        "type": "endpoint.disabled",
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "data": {
            "endpoint_id": endpoint.id,
            "url": endpoint.url,
            "reason": endpoint.disabled_reason,
            "disabled_at": at.isoformat().replace("+00:00", "Z"),
        },
    }
    msg_id = f"msg_{endpoint.id}_disabled_{int(at.timestamp())}"
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False), msg_id


def build_body(job: Job, *, api_url: str, secret: str, now: datetime, link_seconds: int) -> str:
    """The thin event body (< 20 kB), serialised once."""
    expires = int(now.timestamp()) + link_seconds
    base = f"{api_url.rstrip('/')}/v1/segmentations/{job.id}"
    masks = [
        {
            "url": f"{base}/masks/{m.index}?token="
            + mask_token(secret, job_id=job.id, index=m.index, expires=expires),
            "format": m.format,
            "content_type": m.content_type,
            "size": m.size,
            "width": m.width,
            "height": m.height,
        }
        for m in job.masks
    ]
    event = {
        "type": event_type(job.status),
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": {
            "id": job.id,
            "status": job.status.value,
            "error": job.error.model_dump() if job.error else None,
            "metadata": job.metadata,
            "masks": masks,
            **_results(job),
            "links": {"self": base, **_result_links(job, base=base, secret=secret, expires=expires)},
        },
    }
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def _results(job: Job) -> dict[str, object]:
    """Whether anything was found and how many instances: counts only, the instances are a link away."""
    results = job.results
    summary: dict[str, object] = {
        "found": results.found if results else None,
        "instance_count": results.instance_count if results else None,
    }
    if results is not None and results.unavailable is not None:
        summary["instances_unavailable"] = results.unavailable.model_dump()
    return summary


def _result_links(job: Job, *, base: str, secret: str, expires: int) -> dict[str, str]:
    """Signed links to instances.json and the COCO file, where the job has them."""
    results = job.results
    if results is None:
        return {}
    files = {"instances": results.instances_key, "coco": results.coco_key}
    return {
        link: f"{base}/results/{name}?token="
        + result_token(secret, job_id=job.id, name=name, expires=expires)
        for link, key in files.items()
        if key is not None
        for name in [key.rsplit("/", 1)[-1]]
    }
