"""A tenant's limits and the money arithmetic of the spend ledger (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from maskgate.contracts.limits import TenantLimits, micros, month_of, usd
from maskgate.settings import settings_from


@given(st.integers(min_value=0, max_value=10**12))
def test_micros_of_usd_is_the_identity_on_micro_dollars(amount: int) -> None:
    assert micros(usd(amount)) == amount


@given(st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False, allow_infinity=False))
def test_usd_of_micros_keeps_six_decimals(amount: Decimal) -> None:
    assert usd(micros(amount)) == float(amount)


def test_month_of_counts_in_utc() -> None:
    late_in_new_york = datetime(2026, 11, 30, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert month_of(late_in_new_york) == "2026-12"  # 01:00 UTC on December 1st
    assert month_of(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == "2026-12"


def test_limits_default_to_no_quota_no_cap_and_the_cache_on() -> None:
    limits = TenantLimits()
    assert (limits.max_jobs_in_flight, limits.jobs_per_minute, limits.images_per_day) == (0, 0, 0)
    assert (limits.cap_micros, limits.spend_threshold, limits.cache_enabled) == (None, 0.8, True)


def test_a_cap_in_dollars_is_counted_in_micro_dollars() -> None:
    assert TenantLimits(monthly_spend_cap_usd=0.05).cap_micros == 50_000


@pytest.mark.parametrize(
    "bad",
    [{"max_jobs_in_flight": -1}, {"monthly_spend_cap_usd": -0.01}, {"spend_threshold": 0}, {"colour": 1}],
)
def test_limits_refuse_what_cannot_be_a_limit(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TenantLimits.model_validate(bad)


def test_settings_price_sam3_at_half_a_cent_and_read_the_tenant_defaults() -> None:
    settings = settings_from(
        {
            "MASKGATE_TABLE": "t",
            "MASKGATE_BUCKET": "b",
            "MASKGATE_STATE_MACHINE_ARN": "arn",
            "MASKGATE_TENANT_MONTHLY_SPEND_CAP_USD": "",
            "MASKGATE_TENANT_JOBS_PER_MINUTE": "60",
        }
    )
    assert settings.price_micros("wavespeed-ai/sam3-image") == 5_000
    assert (settings.tenant_monthly_spend_cap_usd, settings.tenant_jobs_per_minute) == (None, 60)
