"""A tenant's limits (quotas and the monthly spend cap), its month's usage, and a dry run's verdict
(no I/O).

Money is counted in micro-dollars (``int``): $0.005 is 5,000. A quota of 0 is no quota; a cap of
None is no cap.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MICROS_PER_USD = 1_000_000
Month = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


def usd(micros: int) -> float:
    """Micro-dollars as dollars (rounded to the micro-dollar)."""
    return round(micros / MICROS_PER_USD, 6)


def micros(amount_usd: float | Decimal) -> int:
    """Dollars as micro-dollars (rounded to the nearest)."""
    return int((Decimal(str(amount_usd)) * MICROS_PER_USD).to_integral_value())


def month_of(at: datetime) -> str:
    """The UTC month an instant falls in, ``YYYY-MM``: the month a job's price is counted in."""
    return at.astimezone(UTC).strftime("%Y-%m")


class TenantLimits(BaseModel):
    """What a tenant may use: its quotas (0: none) and its monthly spend cap (None: no cap)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_jobs_in_flight: int = Field(
        default=0, ge=0, le=10_000, description="Jobs accepted and not finished at once; 0: no limit."
    )
    jobs_per_minute: int = Field(default=0, ge=0, description="Jobs accepted per minute; 0: no limit.")
    images_per_day: int = Field(default=0, ge=0, description="Jobs accepted per UTC day; 0: no limit.")
    monthly_spend_cap_usd: float | None = Field(
        default=None,
        ge=0,
        description="The most the tenant's jobs may cost at WaveSpeed in a UTC month, in USD; null: no cap.",
    )
    spend_threshold: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="The fraction of the cap at which tenant.spend_threshold is sent (once a month).",
    )
    cache_enabled: bool = Field(
        default=True, description="Whether the tenant's jobs may be answered from the result cache."
    )

    @property
    def cap_micros(self) -> int | None:
        return None if self.monthly_spend_cap_usd is None else micros(self.monthly_spend_cap_usd)


class UsageJobs(BaseModel):
    """A month's jobs, by what became of their price."""

    accepted: int = Field(description="Jobs accepted (each reserved its price against the cap).")
    submitted: int = Field(description="Jobs sent to WaveSpeed (their price is spent).")
    released: int = Field(
        description="Jobs that ended before any submit (failed, canceled, answered from the cache): "
        "their reservation was given back."
    )
    succeeded: int = Field(description="Jobs that ended succeeded.")
    failed: int = Field(description="Jobs that ended failed.")
    canceled: int = Field(description="Jobs that ended canceled.")
    cache_hits: int = Field(description="Jobs answered from the result cache.")
    quota_rejections: int = Field(description="Requests refused quota_exceeded.")
    cap_rejections: int = Field(description="Requests refused spend_cap_reached.")


class Usage(BaseModel):
    """A tenant's usage in one UTC month."""

    object: Literal["usage"] = "usage"
    tenant: str
    month: Month
    jobs: UsageJobs
    wavespeed_usd: float = Field(description="Spent at WaveSpeed: the price of every job submitted.")
    reserved_usd: float = Field(description="Held by accepted jobs not submitted yet.")
    aws_estimated_usd: float = Field(
        description="AWS cost of the submitted jobs, estimated from the cost model's per-job figure."
    )
    cache_saved_usd: float = Field(description="WaveSpeed dollars the cache hits did not spend.")
    cap_usd: float | None = Field(description="The monthly spend cap; null: no cap.")
    remaining_usd: float | None = Field(
        description="What may still be reserved this month (cap - spent - reserved); null: no cap."
    )
    spend_threshold: float
    threshold_notified_at: datetime | None = Field(
        description="When tenant.spend_threshold was sent this month; null: not yet."
    )
    limits: TenantLimits


class DryRun(BaseModel):
    """What a request would meet, checked without creating a job or spending anything."""

    object: Literal["dry_run"] = "dry_run"
    model: str
    price_usd: float = Field(description="What the job would cost at WaveSpeed.")
    would_run: bool = Field(description="Whether the request would be accepted now.")
    refused_by: Literal["quota_exceeded", "spend_cap_reached"] | None = Field(
        description="What would refuse it; null: nothing."
    )
    detail: str | None = Field(description="Which limit, for people; null when nothing refuses it.")
    retry_after: int | None = Field(description="Seconds until a quota would let it through.")
    cap_usd: float | None
    month_spend_usd: float = Field(description="Spent and reserved this month.")
    remaining_usd: float | None
    cache: Literal["hit", "miss", "off", "unknown"] = Field(
        default="unknown",
        description="Whether the result cache would answer it: hit (an identical job of the tenant "
        "succeeded: no WaveSpeed call, the reserved price released), miss, off (the request's or the "
        "tenant's opt-out), unknown (an image URL, whose bytes maskgate never reads).",
    )
