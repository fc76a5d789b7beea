"""The COCO instances file of one job: one image, its instances as RLE annotations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

DEFAULT_CATEGORY = "object"


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
        "info": {
            "description": f"maskgate segmentation {job_id}",
            "version": "1.0",
            "year": created.year,
            "date_created": created.isoformat(),
        },
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
