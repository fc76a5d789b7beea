"""Cost per image at list prices: the counts of one window of jobs (``meter``) times ``prices``.

Per job (image), per component; then per function (invocations, billed duration, memory, GB-s), a memory
sensitivity line and modelled workflow alternatives. Counted, not assumed: every count is what the
window's jobs caused on the local stack. Estimated (labelled so in the table): Lambda's own START/END/
REPORT log lines and API Gateway's access-log line, whose sizes are typical values, not measured.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.cost.aws_tap import RequestUsage
from benchmarks.cost.prices import (
    GIB,
    PRICES,
    SAM3_USD_PER_IMAGE,
    Prices,
    billed_ms,
    gb_seconds,
    http_api_requests,
    scaled_duration_ms,
    storage_usd,
)
from benchmarks.stats import percentile

PLATFORM_LOG_BYTES = 260  # estimate: Lambda's START, END and REPORT lines for one invocation
ACCESS_LOG_BYTES = 230  # estimate: one line of the HTTP API's access log (the template's format)
MEMORY_SIZES = (256, 512, 1024, 1769)
UNKNOWN_LIFETIME_DAYS = 30.0  # an object or item without an expiry: a month of it is counted


@dataclass(frozen=True)
class Invocation:
    function: str
    wall_s: float
    cpu_s: float  # the handler thread's own CPU time (moto answers its AWS calls on other threads)
    errored: bool
    route: str | None = None  # the HTTP API route key, for API Gateway events
    request_bytes: int = 0  # HTTP API request as metered: path, query, headers and decoded body
    response_bytes: int = 0  # HTTP API response body sent back to the caller


@dataclass
class Window:
    """What one batch of jobs caused, from idle to idle."""

    label: str
    jobs: int
    requests: RequestUsage
    invocations: list[Invocation]
    log_bytes: int
    log_events: int
    webhook_bytes: int
    stored_items: list[tuple[int, float | None]] = field(default_factory=list)  # (bytes, days to TTL)
    settled: bool = True
    instances_s: list[float] = field(default_factory=list)  # Store's wall time finding instances, per call


@dataclass(frozen=True)
class Context:
    """What the template says about the functions and data the counts are priced with."""

    memory_mb: Mapping[str, int]  # function name -> MemorySize (from the translated template)
    names: Mapping[str, str]  # function name -> short name for the table
    s3_lifetime_days: Mapping[str, float]  # key prefix -> days until the lifecycle rule expires it
    log_retention_days: float
    prices: Prices = PRICES


@dataclass(frozen=True)
class Alternative:
    """A workflow shape priced from the same counts: states and functions it would no longer run."""

    name: str
    dropped_states: frozenset[str]
    dropped_functions: frozenset[str]  # short names; their work moves into the function that remains
    timers: bool = False  # no workflow: an SQS delay-queue message (send, receive, delete) per wait
    added_states: float = 0.0  # per successful job: states (and as many invocations) it would add


ALTERNATIVES = (
    Alternative(
        # the shape before the cost benchmark: Store -> Notify, each its own Task and invocation
        "Standard, a separate Notify state",
        frozenset(),
        frozenset(),
        added_states=1.0,
    ),
    Alternative(
        "Standard, the callback (or Poll) stores and notifies",
        frozenset({"Store", "Notify"}),
        frozenset({"Store", "Notify"}),
    ),
    Alternative(
        "no workflow: DynamoDB state + SQS delay timer",
        frozenset({"Submit", "Backoff", "Poll", "Store", "Notify", "Fail"}),
        frozenset({"Store", "Notify"}),
        timers=True,
    ),
)


def summarise(window: Window, states: Sequence[Sequence[str]], context: Context) -> dict[str, Any]:
    """The window's cost per job: components, totals, per-function figures and the alternatives."""
    jobs = max(1, window.jobs)
    p = context.prices
    requests = window.requests
    functions = _functions(window, context, jobs)
    transitions = sum(len(s) for s in states) / max(1, len(states))
    api = [i for i in window.invocations if i.route]
    api_units = sum(http_api_requests(i.request_bytes) for i in api)
    log_bytes = window.log_bytes + PLATFORM_LOG_BYTES * len(window.invocations) + ACCESS_LOG_BYTES * len(api)
    out_bytes = requests.s3_presigned_get_bytes + window.webhook_bytes + sum(i.response_bytes for i in api)
    wru, rru = sum(requests.dynamodb_wru.values()), sum(requests.dynamodb_rru.values())
    components = {
        "Step Functions transitions": transitions * p.sfn_transition,
        "Lambda requests": len(window.invocations) / jobs * p.lambda_request,
        "Lambda duration (GB-s)": sum(f["usd_per_job"] for f in functions.values()),
        "DynamoDB writes (WRU)": wru / jobs * p.dynamodb_wru,
        "DynamoDB reads (RRU)": rru / jobs * p.dynamodb_rru,
        "DynamoDB storage + PITR": _dynamodb_storage(window, p) / jobs,
        "S3 requests": _s3_requests_usd(requests, p) / jobs,
        "S3 storage": _s3_storage(window, context) / jobs,
        "API Gateway (HTTP API)": api_units / jobs * p.http_api_request,
        "SQS": requests.sqs_requests / jobs * p.sqs_request,
        "Secrets Manager": _calls(requests.calls, "secretsmanager.") / jobs * p.secrets_manager_call,
        "CloudWatch Logs (part estimated)": _logs_usd(log_bytes / jobs, context),
        "Data transfer out": out_bytes / jobs / GIB * p.transfer_out_gb,
    }
    total = sum(components.values())
    return {
        "jobs": window.jobs,
        "settled": window.settled,
        "components": components,
        "total_usd": total,
        "share": total / SAM3_USD_PER_IMAGE,
        "counts": {
            "transitions": transitions,
            "lambda_invocations": len(window.invocations) / jobs,
            "dynamodb_wru": wru / jobs,
            "dynamodb_rru": rru / jobs,
            "dynamodb_failed_conditions": sum(requests.dynamodb_failed_conditions.values()) / jobs,
            "s3_tier1": sum(requests.s3_tier1.values()) / jobs,
            "s3_tier2": sum(requests.s3_tier2.values()) / jobs,
            "api_requests": api_units / jobs,
            "sqs_requests": requests.sqs_requests / jobs,
            "dynamodb_stored_bytes": sum(size for size, _ in window.stored_items) / jobs,
            "s3_stored_bytes": sum(size for _, size in requests.s3_stored) / jobs,
            "input_image_bytes": sum(size for key, size in requests.s3_stored if key.startswith("inputs/"))
            / jobs,
            "log_bytes_measured": window.log_bytes / jobs,
            "log_bytes_estimated": (log_bytes - window.log_bytes) / jobs,
            "transfer_out_bytes": out_bytes / jobs,
            "state_machine_starts": dict(requests.state_machine_starts),
        },
        "calls": {name: n / jobs for name, n in sorted(requests.calls.items())},
        "dynamodb_wru": {op: units / jobs for op, units in sorted(requests.dynamodb_wru.items())},
        "dynamodb_rru": {op: units / jobs for op, units in sorted(requests.dynamodb_rru.items())},
        "dynamodb_unsized": dict(requests.dynamodb_unsized),
        "routes": {route: n / jobs for route, n in sorted(Counter(i.route for i in api).items())},
        "functions": functions,
        "instances": instances_share(window, context, jobs),
        "memory": memory_sensitivity(window, context, total - components["Lambda duration (GB-s)"], jobs),
        "alternatives": alternatives(components, total, functions, states, context),
    }


def _functions(window: Window, context: Context, jobs: int) -> dict[str, dict[str, Any]]:
    by_function: dict[str, list[tuple[int, float]]] = {}
    for invocation in window.invocations:
        by_function.setdefault(invocation.function, []).append(
            (billed_ms(invocation.wall_s), invocation.cpu_s * 1000)
        )
    figures: dict[str, dict[str, Any]] = {}
    for function, runs in sorted(by_function.items()):
        memory = context.memory_mb.get(function, 128)
        gbs = sum(gb_seconds(ms, memory) for ms, _ in runs) / jobs
        figures[context.names.get(function, function)] = {
            "invocations_per_job": len(runs) / jobs,
            "p50_billed_ms": percentile([ms for ms, _ in runs], 50),
            "p50_cpu_ms": percentile([cpu for _, cpu in runs], 50),
            "memory_mb": memory,
            "gb_s_per_job": gbs,
            "usd_per_job": gbs * context.prices.lambda_gb_second,
        }
    return figures


def instances_share(window: Window, context: Context, jobs: int) -> dict[str, float]:
    """The part of Store's duration spent finding instances and writing the result files, priced at
    Store's memory: already inside "Lambda duration", shown on its own."""
    memory = next((mb for name, mb in context.memory_mb.items() if context.names.get(name) == "Store"), 128)
    gbs = sum(seconds * memory / 1024 for seconds in window.instances_s) / jobs
    usd = gbs * context.prices.lambda_gb_second
    return {
        "calls_per_job": len(window.instances_s) / jobs,
        "p50_ms": percentile([s * 1000 for s in window.instances_s], 50) if window.instances_s else 0.0,
        "gb_s_per_job": gbs,
        "usd_per_job": usd,
        "share": usd / SAM3_USD_PER_IMAGE,
    }


def serial_p50_ms(window: Window, context: Context) -> dict[str, float]:
    """p50 billed ms of each function in a window (the one run at 1 job in flight)."""
    by_name: dict[str, list[float]] = {}
    for invocation in window.invocations:
        name = context.names.get(invocation.function, invocation.function)
        by_name.setdefault(name, []).append(billed_ms(invocation.wall_s))
    return {name: percentile(values, 50) for name, values in sorted(by_name.items())}


def memory_sensitivity(window: Window, context: Context, other_usd: float, jobs: int) -> dict[str, Any]:
    """Total $/image with every function at each of MEMORY_SIZES: durations as measured, and with the
    CPU part stretched by Lambda's CPU share (``prices.scaled_duration_ms``)."""
    measured: dict[str, float] = {}
    scaled: dict[str, float] = {}
    for memory in MEMORY_SIZES:
        plain = sum(gb_seconds(billed_ms(i.wall_s), memory) for i in window.invocations)
        stretched = sum(
            gb_seconds(billed_ms(scaled_duration_ms(i.wall_s * 1000, i.cpu_s * 1000, memory) / 1000), memory)
            for i in window.invocations
        )
        measured[str(memory)] = other_usd + plain / jobs * context.prices.lambda_gb_second
        scaled[str(memory)] = other_usd + stretched / jobs * context.prices.lambda_gb_second
    return {"measured_duration": measured, "cpu_scaled": scaled}


def alternatives(
    components: Mapping[str, float],
    total: float,
    functions: Mapping[str, Mapping[str, Any]],
    states: Sequence[Sequence[str]],
    context: Context,
) -> dict[str, dict[str, float]]:
    """Each alternative's transitions and total, from this window's counts (modelled, not measured)."""
    p = context.prices
    runs = max(1, len(states))
    rows: dict[str, dict[str, float]] = {}
    for alt in ALTERNATIVES:
        kept = sum(1 for s in states for name in s if name not in alt.dropped_states) / runs
        kept += alt.added_states
        dropped = (f["invocations_per_job"] for name, f in functions.items() if name in alt.dropped_functions)
        dropped_invocations = sum(dropped) - alt.added_states
        timers = (1 + sum(s.count("Poll") for s in states) / runs) if alt.timers else 0.0
        usd = (
            total
            - components["Step Functions transitions"]
            + kept * p.sfn_transition
            - dropped_invocations * p.lambda_request
            + timers * (3 * p.sqs_request + p.lambda_request)
        )
        rows[alt.name] = {"transitions": kept, "total_usd": usd, "share": usd / SAM3_USD_PER_IMAGE}
    return rows


def _logs_usd(size_bytes: float, context: Context) -> float:
    """Ingesting ``size_bytes`` into CloudWatch Logs and keeping them for the log groups' retention."""
    p = context.prices
    return size_bytes / GIB * p.logs_ingested_gb + storage_usd(
        size_bytes, context.log_retention_days, p.logs_gb_month
    )


def _s3_requests_usd(requests: RequestUsage, p: Prices) -> float:
    return (
        sum(requests.s3_tier1.values()) * p.s3_tier1_request
        + sum(requests.s3_tier2.values()) * p.s3_tier2_request
    )


def _calls(calls: Mapping[str, int], prefix: str) -> int:
    return sum(n for name, n in calls.items() if name.startswith(prefix))


def _dynamodb_storage(window: Window, p: Prices) -> float:
    return sum(
        storage_usd(
            size,
            UNKNOWN_LIFETIME_DAYS if days is None else days,
            p.dynamodb_gb_month + p.dynamodb_pitr_gb_month,
        )
        for size, days in window.stored_items
    )


def _s3_storage(window: Window, context: Context) -> float:
    total = 0.0
    for key, size in window.requests.s3_stored:
        prefixes = [prefix for prefix in context.s3_lifetime_days if key.startswith(prefix)]
        days = context.s3_lifetime_days[max(prefixes, key=len)] if prefixes else UNKNOWN_LIFETIME_DAYS
        total += storage_usd(size, days, context.prices.s3_gb_month)
    return total


def s3_lifetimes(template: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, float]:
    """Key prefix -> days until the bucket's lifecycle rules expire an object there."""
    lifetimes: dict[str, float] = {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::S3::Bucket":
            continue
        rules = resource.get("Properties", {}).get("LifecycleConfiguration", {}).get("Rules", [])
        for rule in rules:
            prefix = rule.get("Prefix", rule.get("Filter", {}).get("Prefix"))
            days = rule.get("ExpirationInDays")
            if isinstance(days, Mapping) and "Ref" in days:
                days = parameters.get(str(days["Ref"]))
            if prefix is not None and days is not None and rule.get("Status", "Enabled") == "Enabled":
                lifetimes[str(prefix)] = float(days)
    return lifetimes


def per_image_megabyte(context: Context) -> dict[str, float]:
    """What each MB of input image adds, whatever the run measured (the sample image is 1.3 KB):
    WaveSpeed fetching it by presigned URL (data transfer out), keeping it under ``inputs/``, and, sent
    inline as a data URI (4/3 of its size), the HTTP API increments it spans."""
    p, megabyte = context.prices, 2**20
    days = context.s3_lifetime_days.get("inputs/", UNKNOWN_LIFETIME_DAYS)
    return {
        "transfer_out_usd": megabyte / GIB * p.transfer_out_gb,
        "storage_usd": storage_usd(megabyte, days, p.s3_gb_month),
        "storage_days": days,
        "inline_api_usd": (http_api_requests(megabyte * 4 // 3) - 1) * p.http_api_request,
    }
