"""The WaveSpeed emulator's wire models, fault settings and in-memory records."""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

MODEL = "wavespeed-ai/sam3-image"
STATUSES = ("created", "processing", "completed", "failed")
RETENTION = timedelta(days=7)  # how far back the prediction history reaches

Rate = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0.0, le=600.0, allow_inf_nan=False)]
Coordinate = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class PointPrompt(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    x: Coordinate
    y: Coordinate
    label: Literal[0, 1] = 1


class BoxPrompt(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    x_min: Coordinate
    y_min: Coordinate
    x_max: Coordinate
    y_max: Coordinate

    @model_validator(mode="after")
    def _ordered(self) -> BoxPrompt:
        if not (self.x_min < self.x_max and self.y_min < self.y_max):
            raise ValueError("a box needs x_min < x_max and y_min < y_max")
        return self


class SubmitBody(BaseModel):
    """The sam3-image input as WaveSpeed documents it (unknown fields ignored, as a vendor would)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    image: str = Field(min_length=1)
    prompt: str | None = None
    point_prompts: list[PointPrompt] = []
    box_prompts: list[BoxPrompt] = []
    apply_mask: StrictBool = True
    output_format: Literal["png", "jpeg", "webp"] = "png"
    enable_sync_mode: StrictBool = False

    @field_validator("image")
    @classmethod
    def _fetchable(cls, value: str) -> str:
        if not value.lower().startswith(("http://", "https://", "data:")):
            raise ValueError("image must be an http(s) URL or a data URI")
        return value

    @model_validator(mode="after")
    def _some_prompt(self) -> SubmitBody:
        if not ((self.prompt and self.prompt.strip()) or self.point_prompts or self.box_prompts):
            raise ValueError("at least one of prompt, point_prompts or box_prompts is required")
        return self


@dataclass(frozen=True)
class FaultPlan:
    """What the faults decided for one prediction, drawn once at submission."""

    fail: bool = False
    stuck: bool = False
    drop_callback: bool = False
    duplicate_callback: bool = False
    bad_output: bool = False
    latency_s: float = 0.0


class Faults(BaseModel):
    """Fault rates in [0, 1] and the latency range."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    submit_429: Rate = 0.0
    submit_5xx: Rate = 0.0
    result_5xx: Rate = 0.0
    prediction_failed: Rate = 0.0
    stuck: Rate = 0.0
    drop_callback: Rate = 0.0
    duplicate_callback: Rate = 0.0
    bad_output: Rate = 0.0
    latency_s: tuple[Seconds, Seconds] = (0.05, 0.2)

    @model_validator(mode="after")
    def _latency_ordered(self) -> Faults:
        if self.latency_s[0] > self.latency_s[1]:
            raise ValueError("latency_s must be [min, max] with min <= max")
        return self

    def draw(self, rng: random.Random) -> FaultPlan:
        """Decide every per-prediction fault at once (always the same number of draws)."""
        rolls = [rng.random() for _ in range(5)]
        return FaultPlan(
            fail=rolls[0] < self.prediction_failed,
            stuck=rolls[1] < self.stuck,
            drop_callback=rolls[2] < self.drop_callback,
            duplicate_callback=rolls[3] < self.duplicate_callback,
            bad_output=rolls[4] < self.bad_output,
            latency_s=rng.uniform(*self.latency_s),
        )


@dataclass
class PredictionRecord:
    """One prediction and its output files; mutated only under the emulator's lock."""

    id: str
    body: SubmitBody
    raw_input: dict[str, Any]
    base_url: str
    webhook: str | None
    webhook_id: str
    plan: FaultPlan
    created_at: datetime
    status: str = "created"
    outputs: list[str] = field(default_factory=list)
    error: str = ""
    inference_ms: int = 0
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)

    def data(self) -> dict[str, Any]:
        """The prediction as the result endpoint shows it (the envelope's ``data``)."""
        return {
            "id": self.id,
            "model": MODEL,
            "outputs": list(self.outputs),
            "urls": {"get": f"{self.base_url}/api/v3/predictions/{self.id}/result"},
            "has_nsfw_contents": [False] * len(self.outputs),
            "status": self.status,
            "created_at": iso(self.created_at),
            "error": self.error,
            "timings": {"inference": self.inference_ms},
        }

    def callback_body(self) -> dict[str, Any]:
        """The webhook body: the prediction without envelope, with the input echoed as WaveSpeed does."""
        data = self.data()
        return {"id": data.pop("id"), "model": data.pop("model"), "input": self.raw_input, **data}


class HistoryQuery(BaseModel):
    """The body of ``POST /api/v3/predictions``: a page of the history, optionally filtered."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    page: StrictInt = Field(ge=1)
    page_size: StrictInt = Field(ge=1, le=100)
    model: str | None = None
    status: Literal["completed", "failed", "processing"] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    @field_validator("created_after", "created_before", mode="before")
    @classmethod
    def _iso_8601(cls, value: object) -> datetime | None:
        """An ISO 8601 string (UTC when it names no offset), not the unix numbers pydantic would take."""
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 date-time string")
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def admits(self, record: PredictionRecord) -> bool:
        """True if the record passes every filter the query names."""
        return (
            (self.model is None or self.model == MODEL)
            and (self.status is None or self.status == record.status)
            and (self.created_after is None or record.created_at >= self.created_after)
            and (self.created_before is None or record.created_at <= self.created_before)
        )


def history_page(records: list[PredictionRecord], query: HistoryQuery, *, now: datetime) -> dict[str, Any]:
    """One page of the history: the past 7 days, filtered, newest first (later submissions first on a tie)."""
    oldest = now - RETENTION
    kept = [r for r in reversed(records) if r.created_at >= oldest and query.admits(r)]
    kept.sort(key=lambda r: r.created_at, reverse=True)  # stable: ties keep the newest-first order
    start = (query.page - 1) * query.page_size
    items = [r.data() for r in kept[start : start + query.page_size]]
    return {"page": query.page, "total": len(kept), "items": items}


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``, as WaveSpeed writes times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Stats:
    submissions: int = 0
    submissions_by_image: Counter[str] = field(default_factory=Counter)
    refused_429: int = 0
    refused_503: int = 0
    polls: int = 0
    result_5xx: int = 0
    output_reads: int = 0
    callbacks_sent: int = 0
    callbacks_failed: int = 0
    callbacks_dropped: int = 0

    def snapshot(self, predictions: list[PredictionRecord]) -> dict[str, Any]:
        by_status = Counter(dict.fromkeys(STATUSES, 0))
        by_status.update(record.status for record in predictions)
        return {
            "submissions": self.submissions,
            "submissions_by_image": dict(self.submissions_by_image),
            "refused_429": self.refused_429,
            "refused_503": self.refused_503,
            "polls": self.polls,
            "result_5xx": self.result_5xx,
            "output_reads": self.output_reads,
            "callbacks_sent": self.callbacks_sent,
            "callbacks_failed": self.callbacks_failed,
            "callbacks_dropped": self.callbacks_dropped,
            "predictions_by_status": dict(by_status),
        }


def image_key(image: str) -> str:
    """How stats name an image: a URL without its query (presigned signatures vary), a data URI by hash."""
    if image.lower().startswith("data:"):
        return "data:sha256:" + hashlib.sha256(image.encode()).hexdigest()[:16]
    parts = urlsplit(image)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
