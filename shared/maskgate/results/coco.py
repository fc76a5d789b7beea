"""The COCO instances file of one job: one image, its instances as RLE annotations."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from maskgate.contracts.job import Job

DEFAULT_CATEGORY = "object"


def file_name(job: Job) -> str:
    """The name the COCO file gives the job's image: the last part of its file name, upload key or URL."""
    image = job.image
    name = (image.filename or image.key or image.url or "") if image else ""
    return name.rsplit("/", 1)[-1] or "image"


def coco_file(
    instances: list[dict[str, Any]],
    *,
    job_id: str,
    width: int,
    height: int,
    file_name: str,
    category: str | None,
    created: datetime,
) -> dict[str, Any]:
    """A COCO instances dataset: the image, one annotation per instance (``iscrowd: 0``, the RLE as
    ``segmentation``), and one category named after the text prompt, or ``object``."""
    return {
        "info": _info(job_id, created),
        "licenses": [],
        "images": [{"id": 1, "width": width, "height": height, "file_name": file_name}],
        "annotations": [
            {
                "id": instance["index"] + 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": instance["rle"],
                "area": instance["area"],
                "bbox": instance["bbox"],
                "iscrowd": 0,
            }
            for instance in instances
        ],
        "categories": [{"id": 1, "name": category or DEFAULT_CATEGORY, "supercategory": DEFAULT_CATEGORY}],
    }


def for_job(document: dict[str, Any], job: Job) -> dict[str, Any]:
    """Another job's COCO file (a cached result: the same pixels and prompt) as ``job``'s: its info and
    its image's file name are ``job``'s, the annotations and category are kept."""
    images = [{**image, "file_name": file_name(job)} for image in document.get("images", [])]
    return {**document, "info": _info(job.id, job.created_at), "images": images}


def _info(job_id: str, created: datetime) -> dict[str, Any]:
    return {
        "description": f"maskgate segmentation {job_id}",
        "version": "1.0",
        "year": created.year,
        "date_created": created.isoformat(),
    }
