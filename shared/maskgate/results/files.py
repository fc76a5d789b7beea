"""A job's result files besides its masks, the JSON documents that name the job: ``instances.json`` here,
the COCO file in `maskgate.results.coco`. Plain Python: Store writes them, and the result cache writes a
hit's copies again for the job that reused them."""

from __future__ import annotations

import json
from typing import Any


def encoded(document: dict[str, Any]) -> bytes:
    """A result file's bytes: compact JSON."""
    return json.dumps(document, separators=(",", ":")).encode()


def instances_file(
    job_id: str, *, width: int, height: int, instances: list[dict[str, Any]]
) -> dict[str, Any]:
    """``instances.json``: the job, the masks' size, whether anything was found, and the instances."""
    return {"id": job_id, "width": width, "height": height, "found": bool(instances), "instances": instances}


def instances_for_job(document: dict[str, Any], job_id: str) -> dict[str, Any]:
    """Another job's ``instances.json`` (a cached result: the same pixels and prompt) as ``job_id``'s."""
    return {**document, "id": job_id}
