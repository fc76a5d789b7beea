"""What a finished job found: whether anything was found, how many instances, and where the result files
are. The instances themselves live in ``results/<job_id>/instances.json`` only, never in the job's
DynamoDB item (which every later write of the job, and its indexes, would pay for by size).

Kept together in one field of the job (``Job.results``) so they are written, read and copied as one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Output = Literal["masks", "instances", "coco"]
ALL_OUTPUTS: tuple[Output, ...] = ("masks", "instances", "coco")
INLINE_LIMIT = 32 * 1024  # bytes of instances.json that GET /v1/segmentations/{id} shows inline
INSTANCES_UNAVAILABLE = "instances_unavailable"


def instances_key(job_id: str) -> str:
    return f"results/{job_id}/instances.json"


def coco_key(job_id: str) -> str:
    return f"results/{job_id}/annotations.coco.json"


class Rle(BaseModel):
    """A COCO run-length encoding (compressed string form), as pycocotools reads and writes it."""

    model_config = ConfigDict(frozen=True)
    size: list[int] = Field(description="[height, width] of the mask.", examples=[[240, 320]])
    counts: str = Field(
        description="COCO's compressed RLE string: runs of 0s and 1s down the columns (column-major), "
        "starting with 0s. Decode with pycocotools.mask.decode({'size': size, 'counts': counts}).",
    )


class Instance(BaseModel):
    """One object found: an 8-connected component of a mask, of at least 16 pixels."""

    model_config = ConfigDict(frozen=True)
    index: int = Field(description="The instance's number, from 0, across all masks.")
    mask_index: int = Field(description="The mask it was found in (masks[].index).")
    bbox: list[int] = Field(
        description="[x, y, width, height] in pixels: x, y the top-left corner of the top-left pixel "
        "(as COCO's bbox; equals pycocotools.mask.toBbox of rle).",
        examples=[[10, 20, 190, 160]],
    )
    area: int = Field(description="Its pixel count (equals pycocotools.mask.area of rle).", examples=[30400])
    centroid: list[float] = Field(
        description="[x, y]: the mean of its pixels' centres (pixel (col, row) is centred on "
        "(col + 0.5, row + 0.5)), 2 decimals.",
        examples=[[105.0, 100.0]],
    )
    rle: Rle = Field(description="Its pixels exactly, as a COCO RLE over the whole image.")
    polygons: list[list[float]] = Field(
        description="COCO polygons [[x1, y1, x2, y2, …]]: its outline on pixel corners, simplified "
        "(Douglas-Peucker, 0.5 px); holes are joined to the outline by a zero-width cut so the one ring "
        "rasterizes (even-odd, as pycocotools does) with the holes open.",
        examples=[[[10.0, 20.0, 200.0, 20.0, 200.0, 180.0, 10.0, 180.0]]],
    )


class Unavailable(BaseModel):
    """Why a job has no instances although they were asked for."""

    model_config = ConfigDict(frozen=True)
    type: Literal["instances_unavailable"] = Field(description="Always instances_unavailable.")
    message: str = Field(description="What was missing, for people.")


class Results(BaseModel):
    """What a succeeded job found and where its result files are (all under results/<job_id>/)."""

    model_config = ConfigDict(frozen=True)
    outputs: list[Output] = Field(description="The outputs the request asked for.")
    found: bool | None = Field(
        default=None, description="Whether any instance was found; null when instances were not made."
    )
    instance_count: int | None = Field(default=None, description="How many instances; null when not made.")
    instances_bytes: int | None = Field(
        default=None, description="The size of instances.json: the API shows it inline up to INLINE_LIMIT."
    )
    instances_key: str | None = Field(default=None, description="The instances.json object, if written.")
    coco_key: str | None = Field(default=None, description="The annotations.coco.json object, if written.")
    unavailable: Unavailable | None = Field(
        default=None, description="Why there are no instances although they were asked for."
    )
