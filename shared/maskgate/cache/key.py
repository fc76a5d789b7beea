"""The cache key of a request: the SHA-256 of the image bytes and of exactly what WaveSpeed is sent.

The request is normalized by going through the same function that builds WaveSpeed's submit body
(``wire_body``), from the validated prompts: field order, omitted defaults and the text prompt's
surrounding blanks cannot change the key, while anything WaveSpeed sees (prompt, points, boxes in their
order, apply_mask, output_format) and the model do. What WaveSpeed never sees (webhook_url, metadata,
the cache flag itself) is not part of it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from maskgate.contracts.job import Job
from maskgate.contracts.prompts import Prompts
from maskgate.wavespeed import limits
from maskgate.wavespeed.prediction import wire_body

VERSION = 1  # bump when what a key covers changes: older entries then simply never match


def _canonical(value: Any) -> Any:
    """Numbers as one spelling: 120, 120.0 and -0.0/0.0 are the same pixel to WaveSpeed."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        number = float(value) + 0.0  # -0.0 + 0.0 is 0.0
        return int(number) if number.is_integer() else number
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def normalized_request(prompts: Prompts, *, image_sha256: str) -> dict[str, Any]:
    """What the key covers: the model, the image's digest and the rest of WaveSpeed's submit body."""
    body = wire_body(prompts, image_url=f"sha256:{image_sha256}")
    normalized: dict[str, Any] = _canonical({"v": VERSION, "model": limits.MODEL_PATH, **body})
    return normalized


def request_key(prompts: Prompts, *, image_sha256: str) -> str:
    """The key of a request on an image: hex SHA-256 of its normalized form, as canonical JSON."""
    canonical = json.dumps(
        normalized_request(prompts, image_sha256=image_sha256),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def job_key(job: Job) -> str | None:
    """The job's key, or None when the cache cannot apply: maskgate does not hold its image bytes (an
    https URL WaveSpeed fetches itself) or the request opted out (``"cache": false``)."""
    if job.request is None or job.image is None or job.image.sha256 is None or not job.request.cache:
        return None
    return request_key(job.request, image_sha256=job.image.sha256)
