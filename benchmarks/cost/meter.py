"""Everything one window of benchmark jobs causes on the local stack, counted as AWS would bill it.

A window opens once the stack is idle and closes once it is idle again (no execution running, no Lambda
invoke or S3-triggered invoke in flight), so it holds exactly what its jobs caused. Counted:

- every AWS request that reaches moto (``aws_tap``);
- every Lambda invocation (``HandlerRunner.invoke``, wrapped): function, wall and thread-CPU time of the
  handler, and for HTTP API events the route and the request and response sizes API Gateway meters;
- the bytes the functions log at INFO (the template's default level; the local stack runs at WARNING, so
  the service logger is lowered to INFO for the window and its own handlers kept at their level);
- the bytes of the caller webhooks the jobs delivered (data transfer out).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from unittest import mock

import boto3
from botocore.config import Config

from benchmarks.cost import function_memory, per_image
from benchmarks.cost.aws_tap import BENCH_AGENT, AwsTap, ItemReader, RequestUsage, TableSpec
from benchmarks.cost.dynamo_units import IndexSpec, stored_bytes
from benchmarks.cost.per_image import Context, Invocation, Window
from benchmarks.cost.table import price_table
from benchmarks.harness import Bench
from benchmarks.latency.webhook import JobSample
from maskgate.steps import store as store_step
from maskgate_local.stack.dev import TEMPLATE
from maskgate_local.stack.handlers import HandlerRunner
from maskgate_local.template import sam as sam_template

SETTLE_TIMEOUT_S = 60.0


class _LogBytes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.bytes = 0
        self.events = 0
        self._count = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        with self._count:
            self.bytes += len(line.encode()) + 1
            self.events += 1


class CostMeter:
    """Counts windows of jobs on a running bench; use ``installed`` around the runs."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        aws, provisioned = bench.stack.aws, bench.stack.provisioned
        if aws is None or provisioned is None:
            raise RuntimeError("the local stack is not running")
        self._aws, self._provisioned = aws, provisioned
        self._sfn = self._client("stepfunctions")
        self.tap = AwsTap(
            tables=self._tables(), read_item=moto_item_reader(provisioned.account_id, aws.region)
        )
        self.windows: dict[str, Window] = {}
        self._invocations: list[Invocation] = []
        self._instances_s: list[float] = []
        self._inflight = 0
        self._lock = threading.Lock()
        self._logs = _LogBytes()
        self._label = ""
        self._restore_levels: list[tuple[logging.Logger | logging.Handler, int]] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[CostMeter]:
        """Tap moto and wrap every function's invoke for the duration (counting only inside windows)."""
        self._aws.observe_requests(self.tap)
        try:
            with (
                mock.patch.object(HandlerRunner, "invoke", self._wrap(HandlerRunner.invoke)),
                mock.patch.object(store_step, "store_results", self._timed(store_step.store_results)),
            ):
                yield self
        finally:
            self._aws.observe_requests(None)
            self._quiet_logs()

    def open(self, label: str) -> None:
        """Wait for the stack to be idle, then count from here."""
        self._settle()
        with self._lock:
            self._invocations, self._instances_s = [], []
        self.tap.reset()
        self._logs.bytes = self._logs.events = 0
        self._label = label
        self._count_logs()
        self.tap.counting = True

    def close(self, samples: Sequence[JobSample]) -> Window:
        """Wait for the stack to be idle again, stop counting and keep the window (for these jobs)."""
        settled = self._settle()
        self.tap.counting = False
        self._quiet_logs()
        requests = self.tap.reset()
        with self._lock:
            invocations, self._invocations = self._invocations, []
            instances_s, self._instances_s = self._instances_s, []
        ids = {sample.job_id for sample in samples}
        webhook_bytes = sum(len(d.body) for d in self.bench.receiver.deliveries if _job_of(d.payload) in ids)
        window = Window(
            label=self._label,
            jobs=len(samples),
            requests=requests,
            invocations=invocations,
            log_bytes=self._logs.bytes,
            log_events=self._logs.events,
            webhook_bytes=webhook_bytes,
            stored_items=self._stored_items(requests),
            settled=settled,
            instances_s=instances_s,
        )
        self.windows[window.label] = window
        return window

    @property
    def counting(self) -> bool:
        return self.tap.counting

    def report(
        self, states: Mapping[str, Sequence[Sequence[str]]], *, serial: str | None = None
    ) -> dict[str, Any]:
        """The cost part of the report: each counted path priced per job (with ``states``, the state names
        each of its jobs entered), the prices, p50 billed ms at 1 in flight (``serial`` window) and RSS."""
        context = self.context()
        paths = {
            label: per_image.summarise(window, states.get(label, []), context)
            for label, window in self.windows.items()
            if label != serial
        }
        used = {name for figures in paths.values() for name in figures["functions"]}
        code_dirs = {
            context.names[spec.function_name]: spec.code_dir
            for spec in self._provisioned.functions.values()
            if context.names[spec.function_name] in used
        }
        serial_window = self.windows.get(serial or "")
        return {
            "prices": price_table(),
            "paths": paths,
            "serial_p50_ms": per_image.serial_p50_ms(serial_window, context) if serial_window else {},
            "rss_mb": function_memory.peak_rss_mb(code_dirs),
            "per_image_mb": per_image.per_image_megabyte(context),
        }

    def context(self) -> Context:
        """Memory sizes, names and lifetimes the counts are priced with, as the stack was provisioned."""
        functions = self._provisioned.functions.values()
        parameters = self._provisioned.parameters
        return Context(
            memory_mb={spec.function_name: spec.memory_mb for spec in functions},
            names={spec.function_name: spec.logical_id.removesuffix("Function") for spec in functions},
            s3_lifetime_days=per_image.s3_lifetimes(sam_template.load_template(TEMPLATE), parameters),
            log_retention_days=float(parameters.get("LogRetentionDays", 30)),
        )

    # --- Lambda invocations ---------------------------------------------------------------------------

    def _wrap(self, original: Any) -> Any:
        meter = self

        @functools.wraps(original)
        def invoke(runner: HandlerRunner, event: Any) -> tuple[str, bool]:
            if not meter.counting:
                return original(runner, event)  # type: ignore[no-any-return]
            with meter._lock:
                meter._inflight += 1
            started, cpu_started = time.perf_counter(), time.thread_time()
            try:
                payload, errored = original(runner, event)
            finally:
                wall, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
                with meter._lock:
                    meter._inflight -= 1
            record = Invocation(runner.spec.function_name, wall, cpu, errored, **_http_sizes(event, payload))
            with meter._lock:
                meter._invocations.append(record)
            return payload, errored

        return invoke

    def _timed(self, original: Any) -> Any:
        """Store's instances step, timed (its share of Store's duration is shown on its own)."""
        meter = self

        @functools.wraps(original)
        def store_results(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if meter.counting:
                    with meter._lock:
                        meter._instances_s.append(time.perf_counter() - started)

        return store_results

    # --- settling, tables, logs -----------------------------------------------------------------------

    def _settle(self) -> bool:
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._inflight == 0 and not self._running() and self._aws.wait_idle(0.0):
                return True
            time.sleep(0.02)
        return False

    def _running(self) -> bool:
        return any(
            self._sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING", maxResults=1)["executions"]
            for arn in self._provisioned.state_machines.values()
        )

    def _client(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self._aws.endpoint_url,
            region_name=self._aws.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # moto's placeholder credentials
            config=Config(user_agent_extra=BENCH_AGENT),
        )

    def _tables(self) -> dict[str, TableSpec]:
        dynamodb = self._client("dynamodb")
        specs: dict[str, TableSpec] = {}
        for name in dynamodb.list_tables()["TableNames"]:
            table = dynamodb.describe_table(TableName=name)["Table"]
            ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            specs[name] = TableSpec(
                keys=tuple(k["AttributeName"] for k in table["KeySchema"]),
                indexes=tuple(_index_spec(index) for index in table.get("GlobalSecondaryIndexes", [])),
                ttl_attribute=ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") == "ENABLED" else None,
            )
        return specs

    def _stored_items(self, requests: RequestUsage) -> list[tuple[int, float | None]]:
        """Bytes (table and indexes) and remaining days to TTL of each item the window created."""
        stored: list[tuple[int, float | None]] = []
        for table, key in requests.created_items:
            spec, item = self.tap.tables[table], self.tap.read_item(table, key)
            if item is None:
                continue
            expires = item.get(spec.ttl_attribute or "", {}).get("N")
            days = max(0.0, (float(expires) - time.time()) / 86400) if expires else None
            stored.append((stored_bytes(item, spec.keys, spec.indexes), days))
        return stored

    def _service_logger(self) -> logging.Logger:
        return logging.getLogger(os.environ.get("POWERTOOLS_SERVICE_NAME", "maskgate"))

    def _count_logs(self) -> None:
        service = self._service_logger()
        level = service.getEffectiveLevel()
        others = [h for h in service.handlers if h is not self._logs]
        if others and others[0].formatter is not None:
            self._logs.setFormatter(others[0].formatter)
        self._restore_levels = [(service, service.level)] + [(h, h.level) for h in others]
        for handler in others:  # they keep printing what they printed before
            handler.setLevel(max(handler.level, level))
        service.setLevel(logging.INFO)
        if self._logs not in service.handlers:
            service.addHandler(self._logs)

    def _quiet_logs(self) -> None:
        self._service_logger().removeHandler(self._logs)
        for owner, level in self._restore_levels:
            owner.setLevel(level)
        self._restore_levels = []


def moto_item_reader(account_id: str, region: str) -> ItemReader:
    """Reads an item straight from moto's DynamoDB backend in this process, as DynamoDB JSON."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.utilities import dynamo_json_dump

    backend = dynamodb_backends[account_id][region]

    def read(table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        for _ in range(3):
            try:
                item = backend.get_item(table, dict(key))
                if item is None:
                    return None
                found: dict[str, Any] = json.loads(dynamo_json_dump(item.describe_attrs(None)))["Item"]
                return found
            except RuntimeError:  # the item changed while it was being copied: read it again
                continue
            except Exception:  # no such table or an incomplete key: nothing to size
                return None
        return None

    return read


def _index_spec(index: Mapping[str, Any]) -> IndexSpec:
    projection = index.get("Projection", {})
    return IndexSpec(
        name=str(index["IndexName"]),
        keys=tuple(k["AttributeName"] for k in index["KeySchema"]),
        projection=str(projection.get("ProjectionType", "ALL")),
        non_key_attributes=tuple(projection.get("NonKeyAttributes", [])),
    )


def _job_of(payload: Mapping[str, Any] | None) -> str | None:
    return str(payload["data"]["id"]) if payload and "data" in payload else None


def _http_sizes(event: Any, payload: str) -> dict[str, Any]:
    """For an HTTP API (payload 2.0) event: its route, request size and response body size."""
    if isinstance(event, str | bytes):
        with contextlib.suppress(ValueError):
            event = json.loads(event)
    if not isinstance(event, dict) or "routeKey" not in event:
        return {}
    request = sum(len(k) + len(v) + 4 for k, v in event.get("headers", {}).items())
    request += len(event.get("rawPath", "")) + len(event.get("rawQueryString", "")) + _body_bytes(event)
    response = 0
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        response = _body_bytes(json.loads(payload))
    return {"route": str(event["routeKey"]), "request_bytes": request, "response_bytes": response}


def _body_bytes(message: Mapping[str, Any]) -> int:
    body = message.get("body") or ""
    if message.get("isBase64Encoded"):
        return len(base64.b64decode(body))
    return len(str(body).encode())
