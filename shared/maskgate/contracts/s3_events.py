"""What S3 sends the upload function: ``ObjectCreated`` records, parsed one by one, or its test event."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError


class S3Bucket(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str


class S3Object(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    key: str
    size: int | None = None
    eTag: str | None = None
    sequencer: str | None = None
    versionId: str | None = None


class S3Entity(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    bucket: S3Bucket
    object: S3Object


class S3Record(BaseModel):
    """One S3 notification record: the fields maskgate reads (AWS's and moto's events both parse)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    eventSource: Literal["aws:s3"]
    eventName: str
    eventTime: datetime
    s3: S3Entity


class UploadEvent(BaseModel):
    """What S3 sends the upload function: records, or the ``s3:TestEvent`` (no records) it sends once
    when a notification is configured. Records are parsed one by one (``records``), so one malformed
    record is refused alone instead of failing, and so retrying, the whole event."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    Records: list[Any] = []
    Event: str | None = None

    @property
    def ignored(self) -> str | None:
        """The event's name when it carries no records to act on (``s3:TestEvent``), else None."""
        return (self.Event or "no records") if not self.Records else None

    def records(self) -> tuple[list[S3Record], list[str]]:
        """The records that parse, and why each other one does not."""
        parsed: list[S3Record] = []
        refused: list[str] = []
        for i, raw in enumerate(self.Records):
            try:
                record = S3Record.model_validate(raw)
            except ValidationError as exc:
                refused.append(f"record {i}: {exc.error_count()} invalid fields")
                continue
            if record.eventTime.tzinfo is None:
                refused.append(f"record {i}: eventTime has no time zone")
            elif not record.eventName.startswith("ObjectCreated:"):
                refused.append(f"record {i}: {record.eventName[:100]} is not an object creation")
            else:
                parsed.append(record)
        return parsed, refused
