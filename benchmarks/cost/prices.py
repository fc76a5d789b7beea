"""AWS list prices for the cost-per-image figure: us-east-1, on demand, first tier, no free tier.

Looked up on PRICES_CHECKED (stored copies of the pages below, read that day); AWS changes prices, so
re-check them before quoting a figure. GB means 2**30 bytes, as AWS bills storage and transfer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PRICES_CHECKED = "2026-11-25"
REGION = "us-east-1"
SAM3_USD_PER_IMAGE = 0.005  # the hosted model's own price per image (the figure the budget is a share of)
BUDGET_SHARE = 0.02  # the budget: AWS cost per image <= 2 % of the SAM3 price
GIB = 2**30
DAYS_PER_MONTH = 365 / 12  # storage is billed per GB-month of byte-hours

# (service, page, what was read there)
SOURCES: tuple[tuple[str, str, str], ...] = (
    ("Lambda", "https://aws.amazon.com/lambda/pricing/", "Arm $0.0000133334 per GB-s; $0.20 per 1M requests"),
    (
        "Step Functions",
        "https://aws.amazon.com/step-functions/pricing/",
        "Standard $0.025 per 1,000 transitions",
    ),
    (
        "DynamoDB",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "$0.625 per 1M WRU, $0.125 per 1M RRU (halved on 1 Nov 2024); storage $0.25, PITR $0.20 per GB-month",
    ),
    (
        "S3",
        "https://aws.amazon.com/s3/pricing/",
        "Standard $0.005 per 1,000 PUT/COPY/POST/LIST, $0.0004 per 1,000 GET and other; $0.023 per GB-month",
    ),
    (
        "API Gateway",
        "https://aws.amazon.com/api-gateway/pricing/",
        "HTTP API $1.00 per 1M requests, per 512 KB",
    ),
    ("SQS", "https://aws.amazon.com/sqs/pricing/", "standard $0.40 per 1M requests, each 64 KB chunk one"),
    ("Secrets Manager", "https://aws.amazon.com/secrets-manager/pricing/", "$0.05 per 10,000 API calls"),
    (
        "CloudWatch Logs",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "ingestion $0.50 per GB, $0.03 per GB-month",
    ),
    ("Data transfer", "https://aws.amazon.com/ec2/pricing/on-demand/", "out to the internet $0.09 per GB"),
)


@dataclass(frozen=True)
class Prices:
    """Dollars per unit: each figure of the cost table is a count from the local stack times one of these."""

    lambda_gb_second: float = 0.0000133334  # arm64, first 7.5 billion GB-s a month
    lambda_request: float = 0.20 / 1e6
    sfn_transition: float = 0.025 / 1000  # Standard workflows
    dynamodb_wru: float = 0.625 / 1e6
    dynamodb_rru: float = 0.125 / 1e6
    dynamodb_gb_month: float = 0.25
    dynamodb_pitr_gb_month: float = 0.20  # the table has point-in-time recovery on
    s3_tier1_request: float = 0.005 / 1000  # PUT, COPY, POST, LIST
    s3_tier2_request: float = 0.0004 / 1000  # GET, HEAD and all other (DELETE is free)
    s3_gb_month: float = 0.023  # Standard, first 50 TB
    http_api_request: float = 1.00 / 1e6  # first 300 million a month
    sqs_request: float = 0.40 / 1e6
    secrets_manager_call: float = 0.05 / 10_000
    logs_ingested_gb: float = 0.50
    logs_gb_month: float = 0.03
    transfer_out_gb: float = 0.09  # first 10 TB a month after the free 100 GB


PRICES = Prices()
HTTP_API_METERING_BYTES = 512 * 1024
SQS_CHUNK_BYTES = 64 * 1024
VCPU_MEMORY_MB = 1769  # Lambda allocates one full vCPU at 1,769 MB, proportionally less below


def billed_ms(seconds: float) -> int:
    """Lambda's billed duration: rounded up to the next millisecond."""
    return max(1, math.ceil(seconds * 1000 - 1e-9))


def gb_seconds(duration_ms: float, memory_mb: int) -> float:
    return duration_ms / 1000 * memory_mb / 1024


def http_api_requests(size_bytes: int) -> int:
    """Billable HTTP API requests for one request of this size (metered in 512 KB increments)."""
    return max(1, math.ceil(size_bytes / HTTP_API_METERING_BYTES))


def sqs_requests(payload_bytes: int) -> int:
    """Billable SQS requests for one API call carrying this payload (each 64 KB chunk is one)."""
    return max(1, math.ceil(payload_bytes / SQS_CHUNK_BYTES))


def storage_usd(size_bytes: float, days: float, usd_per_gb_month: float) -> float:
    """Dollars for keeping ``size_bytes`` for ``days``."""
    return size_bytes / GIB * days / DAYS_PER_MONTH * usd_per_gb_month


def scaled_duration_ms(wall_ms: float, cpu_ms: float, memory_mb: int, measured_vcpus: float = 1.0) -> float:
    """A modelled Lambda duration at ``memory_mb``: the CPU part stretched by Lambda's CPU share below one
    vCPU (the local measurement ran on ``measured_vcpus``), the waiting part unchanged."""
    share = min(measured_vcpus, memory_mb / VCPU_MEMORY_MB)
    waiting = max(0.0, wall_ms - cpu_ms)
    return waiting + cpu_ms * measured_vcpus / share


def share_of_sam3(usd: float) -> float:
    return usd / SAM3_USD_PER_IMAGE
