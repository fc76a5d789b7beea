"""WaveSpeed's wire shapes: the submit body we send, and the prediction and history page it answers with
(vendor shapes: unknown fields ignored, parsed once at the edge)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from maskgate.contracts.prompts import Prompts

PAGE_SIZE = 100  # the most WaveSpeed's prediction history gives per page

# ids go into URL paths: nothing that could leave the path segment
PredictionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,128}$")]


class Prediction(BaseModel):
    """A prediction as WaveSpeed reports it (vendor shape: unknown fields ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    id: PredictionId
    status: Literal["created", "processing", "completed", "failed"]
    outputs: list[str] = []
    error: str | None = None
    model: str | None = None
    created_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")

    @field_validator("outputs", mode="before")
    @classmethod
    def _none_yet(cls, value: object) -> object:
        return [] if value is None else value

    @field_validator("created_at", mode="before")
    @classmethod
    def _time_or_unknown(cls, value: object) -> datetime | None:
        """Informational: anything but an ISO 8601 time reads as unknown rather than unreadable."""
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, str) and len(value) <= 64:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                return None
        else:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class PredictionPage(BaseModel):
    """One page of the prediction history (newest first)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    page: int | None = None
    total: int | None = None
    items: list[Prediction]

    def is_last(self, number: int) -> bool:
        """True if page ``number`` (of ``PAGE_SIZE``) ends the history: short, or reaching the total."""
        return len(self.items) < PAGE_SIZE or (self.total is not None and number * PAGE_SIZE >= self.total)


def wire_body(prompts: Prompts, image_url: str) -> dict[str, Any]:
    """The submit body WaveSpeed takes for a validated request."""
    body: dict[str, Any] = {
        "image": image_url,
        "apply_mask": prompts.apply_mask,
        "output_format": prompts.output_format,
    }
    if prompts.prompt is not None:
        body["prompt"] = prompts.prompt
    if prompts.point_prompts:
        body["point_prompts"] = [p.model_dump() for p in prompts.point_prompts]
    if prompts.box_prompts:
        body["box_prompts"] = [b.model_dump() for b in prompts.box_prompts]
    return body
