"""benchmarks.cost.prices: the unit rules that turn counts into dollars (Lambda, HTTP API, SQS, storage)."""

from __future__ import annotations

import pytest

from benchmarks.cost.prices import (
    PRICES,
    billed_ms,
    gb_seconds,
    http_api_requests,
    scaled_duration_ms,
    sqs_requests,
    storage_usd,
)


@pytest.mark.parametrize(("seconds", "ms"), [(0.010, 10), (0.0101, 11), (0.0, 1), (1.2345, 1235)])
def test_billed_ms_rounds_up_to_the_next_millisecond(seconds: float, ms: int) -> None:
    assert billed_ms(seconds) == ms


def test_gb_seconds_is_duration_times_memory_in_gb() -> None:
    assert gb_seconds(1000, 512) == 0.5
    assert gb_seconds(250, 2048) == 0.5


@pytest.mark.parametrize(("size", "requests"), [(0, 1), (512 * 1024, 1), (512 * 1024 + 1, 2), (1_400_000, 3)])
def test_http_api_requests_are_metered_in_512_kb_increments(size: int, requests: int) -> None:
    assert http_api_requests(size) == requests


@pytest.mark.parametrize(("size", "requests"), [(0, 1), (65536, 1), (65537, 2), (262144, 4)])
def test_sqs_requests_count_each_64_kb_chunk(size: int, requests: int) -> None:
    assert sqs_requests(size) == requests


def test_storage_of_one_gb_for_a_month_costs_the_monthly_price() -> None:
    assert storage_usd(2**30, 365 / 12, 0.023) == pytest.approx(0.023)
    assert storage_usd(2**29, 365 / 24, 0.023) == pytest.approx(0.023 / 4)


def test_scaled_duration_keeps_waiting_and_stretches_cpu_below_one_vcpu() -> None:
    assert scaled_duration_ms(100.0, 40.0, 1769) == pytest.approx(100.0)
    assert scaled_duration_ms(100.0, 40.0, 3538) == pytest.approx(100.0)  # no faster than measured
    assert scaled_duration_ms(100.0, 40.0, 1769 // 2) == pytest.approx(60.0 + 40.0 * 1769 / (1769 // 2))


def test_list_prices_are_the_ones_the_table_cites() -> None:
    assert PRICES.sfn_transition * 1000 == pytest.approx(0.025)
    assert PRICES.dynamodb_wru * 1e6 == pytest.approx(0.625)  # after the November 2024 on-demand cut
    assert PRICES.dynamodb_rru * 1e6 == pytest.approx(0.125)
    assert PRICES.lambda_request * 1e6 == pytest.approx(0.20)
    assert PRICES.http_api_request * 1e6 == pytest.approx(1.00)
