"""benchmarks.cost.per_image: counts of a window of jobs priced per job, by component; the modelled
alternatives.

Every expected dollar figure is written out from the list prices (literals here), not taken from
``benchmarks.cost.prices``.
"""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks.cost.aws_tap import RequestUsage
from benchmarks.cost.per_image import (
    ACCESS_LOG_BYTES,
    PLATFORM_LOG_BYTES,
    Context,
    Invocation,
    Window,
    per_image_megabyte,
    s3_lifetimes,
    summarise,
)
from benchmarks.cost.table import render

GB = 2**30
MONTH_DAYS = 365 / 12
CONTEXT = Context(
    memory_mb={"maskgate-ApiFunction": 512, "maskgate-StoreFunction": 1024},
    names={"maskgate-ApiFunction": "Api", "maskgate-StoreFunction": "Store"},
    s3_lifetime_days={"inputs/": 7.0, "results/": 30.0},
    log_retention_days=30.0,
)
STATES = [["Submit", "Store", "Notify"], ["Submit", "Store", "Notify"]]


def _window() -> Window:
    """Two jobs: two API requests (100 ms), two Store invokes (50 ms), a few billed requests."""
    requests = RequestUsage(
        calls=Counter({"dynamodb.PutItem": 2, "secretsmanager.GetSecretValue": 2}),
        dynamodb_wru=Counter({"PutItem": 4, "PutItem (indexes)": 2}),
        s3_tier1=Counter({"PutObject": 2}),
        s3_tier2=Counter({"GetObject": 2}),
        s3_stored=[("inputs/a.png", 1024), ("results/a/mask_0.png", 2048)],
        s3_presigned_get_bytes=1024,
        sqs_requests=2,
    )
    requests.dynamodb_rru["GetItem"] = 3.0
    api = Invocation("maskgate-ApiFunction", 0.1, 0.02, False, "POST /v1/segmentations", 600 * 1024, 300)
    store = Invocation("maskgate-StoreFunction", 0.05, 0.01, False)
    return Window(
        label="callback",
        jobs=2,
        requests=requests,
        invocations=[api, api, store, store],
        log_bytes=1000,
        log_events=4,
        webhook_bytes=700,
        stored_items=[(2048, 30.0), (1024, None)],
    )


def test_transitions_are_the_mean_states_entered_times_the_standard_price() -> None:
    figures = summarise(_window(), STATES, CONTEXT)
    assert figures["components"]["Step Functions transitions"] == pytest.approx(3 * 0.025 / 1000)


def test_lambda_is_requests_plus_billed_ms_times_each_functions_memory() -> None:
    figures = summarise(_window(), STATES, CONTEXT)
    gb_s_per_job = (2 * 0.100 * 0.5 + 2 * 0.050 * 1.0) / 2
    assert figures["components"]["Lambda requests"] == pytest.approx(2 * 0.20 / 1e6)
    assert figures["components"]["Lambda duration (GB-s)"] == pytest.approx(gb_s_per_job * 0.0000133334)
    assert figures["functions"]["Store"]["memory_mb"] == 1024
    assert figures["functions"]["Api"]["invocations_per_job"] == 1.0


def test_dynamodb_s3_api_sqs_and_secrets_are_counts_times_their_prices() -> None:
    c = summarise(_window(), STATES, CONTEXT)["components"]
    assert c["DynamoDB writes (WRU)"] == pytest.approx(3 * 0.625 / 1e6)
    assert c["DynamoDB reads (RRU)"] == pytest.approx(1.5 * 0.125 / 1e6)
    assert c["S3 requests"] == pytest.approx(0.005 / 1000 + 0.0004 / 1000)
    assert c["API Gateway (HTTP API)"] == pytest.approx(2 * 1.00 / 1e6)  # 600 KB is two 512 KB increments
    assert c["SQS"] == pytest.approx(0.40 / 1e6)
    assert c["Secrets Manager"] == pytest.approx(0.05 / 10_000)


def test_storage_lasts_the_lifecycle_or_ttl_lifetime() -> None:
    c = summarise(_window(), STATES, CONTEXT)["components"]
    s3 = (1024 * 7 + 2048 * 30) / GB / MONTH_DAYS * 0.023 / 2
    dynamodb = (2048 * 30 + 1024 * 30) / GB / MONTH_DAYS * (0.25 + 0.20) / 2  # no TTL: a month
    assert c["S3 storage"] == pytest.approx(s3)
    assert c["DynamoDB storage + PITR"] == pytest.approx(dynamodb)


def test_logs_and_transfer_out_count_measured_and_estimated_bytes() -> None:
    c = summarise(_window(), STATES, CONTEXT)["components"]
    logs = (1000 + 4 * PLATFORM_LOG_BYTES + 2 * ACCESS_LOG_BYTES) / 2
    assert c["CloudWatch Logs (part estimated)"] == pytest.approx(logs / GB * (0.50 + 0.03 * 30 / MONTH_DAYS))
    assert c["Data transfer out"] == pytest.approx((1024 + 700 + 2 * 300) / 2 / GB * 0.09)


def test_total_is_the_sum_of_components_and_its_share_of_the_sam3_price() -> None:
    figures = summarise(_window(), STATES, CONTEXT)
    assert figures["total_usd"] == pytest.approx(sum(figures["components"].values()))
    assert figures["share"] == pytest.approx(figures["total_usd"] / 0.005)


def test_alternatives_drop_their_states_and_invocations_from_the_same_counts() -> None:
    figures = summarise(_window(), STATES, CONTEXT)
    merged = figures["alternatives"]["Standard, the callback (or Poll) stores and notifies"]
    assert merged["transitions"] == 1.0
    saved = 2 * 0.025 / 1000 + 1 * 0.20 / 1e6  # Store and Notify states; the one Store invoke per job
    assert merged["total_usd"] == pytest.approx(figures["total_usd"] - saved)
    no_workflow = figures["alternatives"]["no workflow: DynamoDB state + SQS delay timer"]
    timer = 3 * 0.40 / 1e6 + 0.20 / 1e6
    assert no_workflow["total_usd"] == pytest.approx(
        figures["total_usd"] - 3 * 0.025 / 1000 - 0.20 / 1e6 + timer
    )


def test_memory_sensitivity_prices_every_function_at_each_size() -> None:
    figures = summarise(_window(), STATES, CONTEXT)
    other = figures["total_usd"] - figures["components"]["Lambda duration (GB-s)"]
    at_1024 = (2 * 0.100 + 2 * 0.050) * 1.0 / 2 * 0.0000133334
    assert figures["memory"]["measured_duration"]["1024"] == pytest.approx(other + at_1024)
    assert figures["memory"]["cpu_scaled"]["1769"] == pytest.approx(
        figures["memory"]["measured_duration"]["1769"]
    )


def test_s3_lifetimes_read_the_bucket_lifecycle_rules_and_their_parameters() -> None:
    template = {
        "Resources": {
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "LifecycleConfiguration": {
                        "Rules": [
                            {"Status": "Enabled", "Prefix": "inputs/", "ExpirationInDays": 7},
                            {"Status": "Enabled", "Prefix": "results/", "ExpirationInDays": {"Ref": "Ttl"}},
                            {"Status": "Disabled", "Prefix": "old/", "ExpirationInDays": 1},
                        ]
                    }
                },
            }
        }
    }
    assert s3_lifetimes(template, {"Ttl": "30"}) == {"inputs/": 7.0, "results/": 30.0}


def test_each_megabyte_of_image_adds_transfer_out_and_storage() -> None:
    per_mb = per_image_megabyte(CONTEXT)
    assert per_mb["transfer_out_usd"] == pytest.approx(0.09 / 1024)
    assert per_mb["storage_usd"] == pytest.approx(0.023 / 1024 * 7 / MONTH_DAYS)
    assert per_mb["inline_api_usd"] == pytest.approx(2 * 1.00 / 1e6)  # 1.33 MB spans three increments


def test_render_prints_both_paths_and_the_budget_verdict() -> None:
    figures = summarise(_window(), STATES, CONTEXT)
    text = render(
        {"paths": {"callback": figures, "poll": figures}, "per_image_mb": per_image_megabyte(CONTEXT)}
    )
    assert "cost per image" in text and "Step Functions transitions" in text
    assert "OVER | OVER" in text or "within | within" in text


def test_the_separate_notify_alternative_adds_a_state_and_an_invocation() -> None:
    figures = summarise(_window(), STATES, CONTEXT)
    separate = figures["alternatives"]["Standard, a separate Notify state"]
    assert separate["transitions"] == pytest.approx(figures["counts"]["transitions"] + 1)
    assert separate["total_usd"] == pytest.approx(figures["total_usd"] + 0.025 / 1000 + 0.20 / 1e6)
