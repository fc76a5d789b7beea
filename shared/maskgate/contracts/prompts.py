"""The prompt payload (text, points, boxes), shared by the HTTP API and the S3 path.

Field names mirror WaveSpeed's. Limits that WaveSpeed documents nowhere we could check live in
``maskgate.wavespeed.limits`` so they can be corrected in one place.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from maskgate.contracts.examples import CREATE_EXAMPLE, UPLOAD_EXAMPLE
from maskgate.contracts.results import ALL_OUTPUTS, Output
from maskgate.errors import InvalidRequest, MissingPrompt, RequestError
from maskgate.wavespeed import limits

Pixel = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
OutputFormat = Literal["png", "jpeg", "webp"]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40)]
MetadataValue = Annotated[str, StringConstraints(max_length=500)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
MAX_METADATA_BYTES = 9 * 1024  # 16 ASCII keys+values at their field limits fit; body stays < 20 kB


class Contract(BaseModel):
    """Our own contracts: unknown fields are refused and values never change after parsing."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Point(Contract):
    """A point on the object (label 1) or off it (label 0), in pixels from the top-left corner."""

    x: Pixel = Field(description="Pixels from the left edge (>= 0, inside the image).")
    y: Pixel = Field(description="Pixels from the top edge (>= 0, inside the image).")
    label: Annotated[int, Field(strict=True, ge=0, le=1)] = Field(  # no booleans
        default=1, description="1: include the region here; 0: exclude it."
    )


class Box(Contract):
    """A box around the object, in pixels; min < max on both axes, the max edges exclusive."""

    x_min: Pixel = Field(description="Left edge, pixels from the left.")
    y_min: Pixel = Field(description="Top edge, pixels from the top.")
    x_max: Pixel = Field(description="Right edge (exclusive), greater than x_min, at most the image width.")
    y_max: Pixel = Field(description="Bottom edge (exclusive), greater than y_min, at most the image height.")

    @model_validator(mode="after")
    def _ordered(self) -> Box:
        if self.x_min >= self.x_max or self.y_min >= self.y_max:
            raise ValueError("a box needs x_min < x_max and y_min < y_max")
        return self


class Prompts(Contract):
    """The prompt payload without the image: what S3 object metadata and ``POST /v1/uploads`` carry.
    At least one of prompt, point_prompts and box_prompts is required."""

    prompt: str | None = Field(
        default=None, description="Text naming what to segment, 1 to 1000 characters after trimming."
    )
    point_prompts: Annotated[list[Point], Field(max_length=limits.MAX_POINTS)] = Field(
        default=[], description="Up to 64 points on (label 1) or off (label 0) the object."
    )
    box_prompts: Annotated[list[Box], Field(max_length=limits.MAX_BOXES)] = Field(
        default=[], description="Up to 64 boxes around objects."
    )
    apply_mask: bool = Field(
        default=False,
        description="true: the image cut out by the mask; false: the mask itself.",
    )
    output_format: OutputFormat = Field(default="png", description="The masks' image format.")
    cache: bool = Field(
        default=True,
        description="false: never reuse an earlier identical job's masks for this job, nor offer this "
        "job's masks for reuse (see the job's cache field). Only images maskgate holds (a data: URI, a "
        "direct or S3 upload) are cached; an https image URL never is.",
    )
    webhook_url: Url | None = Field(
        default=None,
        description="Where to send the signed webhook when the job ends (https, a public address).",
    )
    metadata: Annotated[dict[MetadataKey, MetadataValue], Field(max_length=16)] = Field(
        default={},
        description="Up to 16 string values (keys up to 40, values up to 500 characters, 9 KiB in all), "
        "echoed in the job and its webhook.",
    )

    outputs: Annotated[list[Output], Field(min_length=1, max_length=3)] = Field(
        default=list(ALL_OUTPUTS),
        description="What the job keeps: masks (the mask images), instances (each object's box, area, "
        "centroid, COCO RLE and polygons) and coco (a COCO annotations file). Default: all three; "
        '["masks"] alone spends no time finding instances.',
        examples=[["masks", "instances", "coco"]],
    )

    @field_validator("outputs")
    @classmethod
    def _distinct(cls, value: list[Output]) -> list[Output]:
        if len(set(value)) != len(value):
            raise ValueError("outputs may name each of masks, instances and coco once")
        return value

    @field_validator("prompt")
    @classmethod
    def _trimmed(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not 1 <= len(value) <= limits.MAX_TEXT_LENGTH:
            raise ValueError(f"prompt must be 1 to {limits.MAX_TEXT_LENGTH} characters after trimming")
        return value

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, str]) -> dict[str, str]:
        size = sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"metadata may hold at most {MAX_METADATA_BYTES} bytes (UTF-8), not {size}")
        return value

    @model_validator(mode="after")
    def _some_prompt(self) -> Prompts:
        if self.prompt is None and not self.point_prompts and not self.box_prompts:
            raise PydanticCustomError(
                "missing_prompt", "give at least one of prompt, point_prompts or box_prompts"
            )
        return self

    def check_inside(self, width: int, height: int) -> None:
        """Raise InvalidRequest if a point or box lies outside a width × height image."""
        errors = [
            {
                "loc": f"point_prompts.{i}",
                "msg": f"point ({p.x}, {p.y}) is outside the {width}x{height} image",
            }
            for i, p in enumerate(self.point_prompts)
            if p.x >= width or p.y >= height
        ]
        errors += [
            {"loc": f"box_prompts.{i}", "msg": f"box reaches outside the {width}x{height} image"}
            for i, b in enumerate(self.box_prompts)
            if b.x_max > width or b.y_max > height
        ]
        if errors:
            raise InvalidRequest("prompt coordinates lie outside the image", errors=errors)


class SegmentationCreate(Prompts):
    """``POST /v1/segmentations``: the prompts plus the image as an https URL or a data URI."""

    model_config = ConfigDict(json_schema_extra={"examples": [CREATE_EXAMPLE]})

    image: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="An https URL WaveSpeed can fetch (up to 2048 characters), or a data: URI of a PNG, "
        "JPEG, WEBP, GIF, BMP or TIFF (the whole body at most 5 MB; larger images: POST /v1/uploads)."
    )

    @field_validator("image")
    @classmethod
    def _url_length(cls, value: str) -> str:
        if not value.startswith("data:") and len(value) > 2048:
            raise ValueError("an image URL may be at most 2048 characters (send larger data as a data: URI)")
        return value


# The file's name is data kept on the job (the upload's key is chosen by the server): printable
# text, no path separators, short enough to show anywhere.
Filename = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^/\\\x00-\x1f\x7f]+$")]
ImageContentType = Literal["image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff"]


class UploadCreate(Prompts):
    """``POST /v1/uploads``: the prompts plus the file to be uploaded directly to S3."""

    model_config = ConfigDict(json_schema_extra={"examples": [UPLOAD_EXAMPLE]})

    filename: Filename = Field(description="The file's name, kept on the job as data (never part of a key).")
    content_type: ImageContentType = Field(description="The file's media type; the upload form requires it.")

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        # control, format (e.g. bidi overrides), surrogate and unassigned characters all start with C
        if any(unicodedata.category(char).startswith("C") for char in value):
            raise ValueError("filename may not hold control or invisible formatting characters")
        if not value.strip():
            raise ValueError("filename may not be blank")
        return value


def strict_json(raw: str | bytes) -> Any:
    """Decode JSON that can also be encoded again as UTF-8: no lone surrogates, no nesting so deep
    it exhausts the parser. Raises ValueError otherwise."""
    try:
        value = json.loads(raw)
        json.dumps(value, ensure_ascii=False).encode()
    except (RecursionError, UnicodeError) as exc:
        raise ValueError(f"unusable JSON: {type(exc).__name__}") from exc
    return value


# pydantic's wording where it reads as library output rather than as an answer to the caller
_READABLE = {
    "extra_forbidden": "is not a field of this request",
    "missing": "is required",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
}


def readable(error: Any) -> str:
    """A pydantic error's message as the API says it: no "Value error, " prefix, no library jargon."""
    kind, message = str(error.get("type", "")), str(error.get("msg", ""))
    if kind in _READABLE:
        return _READABLE[kind].format(expected=(error.get("ctx") or {}).get("expected", "the listed values"))
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def problem_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as the ``errors`` list of a problem document (``loc`` dotted, ``msg``)."""
    return [
        {"loc": ".".join(str(part) for part in err["loc"]) or "body", "msg": readable(err)}
        for err in exc.errors(include_url=False)
    ]


def request_error(exc: ValidationError) -> RequestError:
    """The typed error a pydantic failure means: missing_prompt when that is all, else invalid_request."""
    errors = problem_errors(exc)
    if all(err["type"] == "missing_prompt" for err in exc.errors()):
        return MissingPrompt(errors[0]["msg"], errors=errors)
    return InvalidRequest("the request payload is invalid", errors=errors)


def parse_prompts(raw: Any, model: type[Prompts] = Prompts) -> Prompts:
    """Validate a decoded JSON value as prompts, raising the typed error on failure."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise request_error(exc) from exc
