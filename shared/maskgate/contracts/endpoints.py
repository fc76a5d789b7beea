"""Registered webhook endpoints: what a tenant sends to create or change one, and what is kept (no I/O).

An endpoint receives every job event its filter matches (an empty filter matches every event), signed
with a key of its own: a ``whsec_`` secret (v1, HMAC-SHA256) or a ``whsk_`` Ed25519 private key (v1a),
whose ``whpk_`` public key is shown. A job's own ``webhook_url`` still receives that job's events too,
signed with the tenant's secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from maskgate.contracts.prompts import MetadataKey, MetadataValue

EVENT_TYPES = (
    "segmentation.succeeded",
    "segmentation.failed",
    "segmentation.canceled",
    "endpoint.disabled",
    "tenant.spend_threshold",
)
EventName = Literal[
    "segmentation.succeeded",
    "segmentation.failed",
    "segmentation.canceled",
    "endpoint.disabled",
    "tenant.spend_threshold",
]
EndpointId = Annotated[str, StringConstraints(pattern=r"^ep_[0-9a-f]{16}$")]
Signature = Literal["v1", "v1a"]


def _url(default: object = ...) -> Any:
    return Field(
        default,
        max_length=2048,
        description="Where events are POSTed: https in AWS (the local stack allows http on loopback); "
        "checked when set and again at every send.",
    )


def _description(default: object) -> Any:
    return Field(default, max_length=256, description="What the endpoint is for (shown back only).")


def _event_types(default: object) -> Any:
    return Field(
        default,
        max_length=len(EVENT_TYPES),
        description="The event types this endpoint receives; empty (the default) receives every type.",
    )


def _rate(default: object) -> Any:
    return Field(
        default,
        ge=1,
        le=1000,
        description="At most this many deliveries per second to this endpoint; the rest wait. "
        "Unset: no limit of the endpoint's own.",
    )


def _enabled(default: object) -> Any:
    return Field(
        default,
        description="Whether it receives events (disabled endpoints receive nothing); true re-enables "
        "an endpoint maskgate disabled.",
    )


def _signature(default: object) -> Any:
    return Field(
        default,
        description="v1: HMAC-SHA256 with the endpoint's whsec_ secret (Standard Webhooks); "
        "v1a: Ed25519 with the endpoint's key pair, verified with its public_key. Changing it (PATCH) "
        "makes a key of the new scheme; the old key keeps signing alongside for 24 hours, so every "
        "delivery carries both signatures while receivers switch.",
    )


def _metadata(default: object) -> Any:
    return Field(default, max_length=16, description="Up to 16 string pairs of your own, shown back only.")


class EndpointCreate(BaseModel):
    """``POST /v1/webhook-endpoints``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = _url()
    description: str = _description("")
    event_types: list[EventName] = _event_types([])
    enabled: bool = _enabled(True)
    rate_limit_per_second: int | None = _rate(None)
    metadata: dict[MetadataKey, MetadataValue] = _metadata({})
    signature: Signature = _signature("v1")


def _left_out_is_unchanged(schema: dict[str, Any]) -> None:
    """No field of a change has a default: one left out keeps its value."""
    for field in schema.get("properties", {}).values():
        field.pop("default", None)


class EndpointUpdate(BaseModel):
    """``PATCH /v1/webhook-endpoints/{id}``: only the fields sent change. Only ``rate_limit_per_second``
    may be sent as null (no limit of the endpoint's own); a field left out is unchanged."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_left_out_is_unchanged)
    url: str = _url(None)
    description: str = _description(None)
    event_types: list[EventName] = _event_types(None)
    enabled: bool = _enabled(None)
    rate_limit_per_second: int | None = _rate(None)
    metadata: dict[MetadataKey, MetadataValue] = _metadata(None)
    signature: Signature = _signature(None)


class Endpoint(BaseModel):
    """An endpoint as it is kept, secrets included (never shown whole: see ``views``).

    ``secret`` is the key that signs: a ``whsec_`` secret for v1, a ``whsk_`` Ed25519 private key for
    v1a (never shown by the API; ``public_key`` is its ``whpk_`` public key). ``previous_secret`` is the
    one a rotation replaced, signing alongside until ``previous_until``."""

    model_config = ConfigDict(frozen=True)
    id: EndpointId
    tenant: str
    url: str
    description: str = ""
    event_types: list[str] = Field(default_factory=list)
    enabled: bool = True
    rate_limit_per_second: int | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    signature: Signature = "v1"
    public_key: str | None = None
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    # set in the write that disables it, cleared once the other endpoints have been told
    disabled_notice_pending: bool = False
    secret: str = Field(repr=False)
    previous_secret: str | None = Field(default=None, repr=False)
    previous_until: datetime | None = None

    def receives(self, event: str) -> bool:
        """Enabled, and the event passes its filter."""
        return self.enabled and self.takes(event)

    def takes(self, event: str) -> bool:
        """The event passes its filter (an empty filter passes every event), enabled or not."""
        return not self.event_types or event in self.event_types

    def secrets(self, now: datetime) -> list[str]:
        """The keys that sign now (``whsec_`` or ``whsk_``, each signs by its prefix): current first,
        then a rotated-out one inside its overlap."""
        found = [self.secret]
        if self.previous_secret and self.previous_until and self.previous_until > now:
            found.append(self.previous_secret)
        return found
