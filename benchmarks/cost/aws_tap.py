"""Billable AWS requests, counted where they reach moto (``LocalAws.observe_requests``).

Each request is classified by its SigV4 credential scope (the header's, or a presigned URL's) and its
operation: S3 by price class, DynamoDB by request units (the items before and after the request are read
from moto's backend in this process, then ``dynamo_units`` applies DynamoDB's rules), every JSON-protocol
call (SQS, Secrets Manager, Step Functions, ...) by ``X-Amz-Target``. Requests whose User-Agent carries
``BENCH_AGENT`` (the meter's own look-ups) are not counted.

Approximations: the before-image is read just before moto handles the write, so a concurrent write to the
same item between the two (the shared per-minute rate-limit item) may be sized one state off; Query and
Scan are sized by the items they return, not the ones they read before a filter or projection.
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from benchmarks.cost import dynamo_units
from benchmarks.cost.dynamo_units import IndexSpec
from benchmarks.cost.prices import sqs_requests

BENCH_AGENT = "maskgate-cost-meter"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ItemReader = Callable[[str, Mapping[str, Any]], dict[str, Any] | None]
_S3_FREE = ("DELETE",)


@dataclass(frozen=True)
class TableSpec:
    keys: tuple[str, ...]
    indexes: tuple[IndexSpec, ...] = ()
    ttl_attribute: str | None = None


@dataclass
class RequestUsage:
    """What the counted requests would be billed for (totals over a window)."""

    calls: Counter[str] = field(default_factory=Counter)  # "service.Operation" -> requests
    dynamodb_wru: Counter[str] = field(default_factory=Counter)  # "PutItem", "PutItem (indexes)" -> WRU
    dynamodb_rru: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    dynamodb_failed_conditions: Counter[str] = field(default_factory=Counter)
    dynamodb_unsized: Counter[str] = field(default_factory=Counter)
    created_items: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (table, key)
    s3_tier1: Counter[str] = field(default_factory=Counter)
    s3_tier2: Counter[str] = field(default_factory=Counter)
    s3_stored: list[tuple[str, int]] = field(default_factory=list)  # (key, bytes) of objects written
    s3_presigned_get_bytes: int = 0  # served to presigned URLs: leaves AWS (WaveSpeed fetching the image)
    sqs_requests: int = 0  # in 64 KB chunks
    state_machine_starts: Counter[str] = field(default_factory=Counter)


class AwsTap:
    """A WSGI middleware counting into ``usage`` while ``counting`` is set."""

    def __init__(self, *, tables: Mapping[str, TableSpec], read_item: ItemReader) -> None:
        self.tables = dict(tables)
        self.read_item = read_item
        self.counting = False
        self.usage = RequestUsage()
        self._lock = threading.Lock()

    def reset(self) -> RequestUsage:
        """Start a new window; returns the usage of the one that ended."""
        with self._lock:
            ended, self.usage = self.usage, RequestUsage()
        return ended

    def __call__(self, app: WsgiApp) -> WsgiApp:
        def tapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if not self.counting or BENCH_AGENT in environ.get("HTTP_USER_AGENT", ""):
                return app(environ, start_response)
            service = _service(environ)
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            if service == "dynamodb" and target:
                return self._dynamodb(app, environ, start_response, target.rsplit(".", 1)[-1])
            if service == "s3":
                return self._s3(app, environ, start_response)
            if target:
                self._json_call(service, target.rsplit(".", 1)[-1], environ)
            return app(environ, start_response)

        return tapped

    # --- DynamoDB -------------------------------------------------------------------------------------

    def _dynamodb(
        self, app: WsgiApp, environ: dict[str, Any], start_response: Callable[..., Any], operation: str
    ) -> Iterable[bytes]:
        body = _read_body(environ)
        request = json.loads(body or b"{}")
        if operation == "TransactWriteItems":
            return self._transaction(app, environ, start_response, request)
        table = str(request.get("TableName", ""))
        spec = self.tables.get(table)
        key = _item_key(operation, request, spec)
        before = self.read_item(table, key) if key is not None and operation != "GetItem" else None
        status, response = _call(app, environ, start_response)
        after = self.read_item(table, key) if key is not None else None
        self._count_dynamodb(operation, request, spec, key, before, after, status, response)
        return [response]

    def _count_dynamodb(
        self,
        operation: str,
        request: dict[str, Any],
        spec: TableSpec | None,
        key: dict[str, Any] | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        status: int,
        response: bytes,
    ) -> None:
        table = str(request.get("TableName", ""))
        failed_condition = status == 400 and b"ConditionalCheckFailed" in response
        with self._lock:
            self.usage.calls[f"dynamodb.{operation}"] += 1
            if status >= 300 and not failed_condition:
                return  # a rejected request (validation, throttling) is not billed
            if spec is None or operation not in ("PutItem", "UpdateItem", "DeleteItem", "GetItem", "Query"):
                self.usage.dynamodb_unsized[operation] += 1
                return
            if operation == "GetItem":
                size = dynamo_units.item_size(after)
                self.usage.dynamodb_rru[operation] += dynamo_units.read_units(
                    size, consistent=bool(request.get("ConsistentRead"))
                )
            elif operation == "Query":
                found = json.loads(response).get("Items", [])
                consistent = bool(request.get("ConsistentRead")) and "IndexName" not in request
                size = sum(dynamo_units.item_size(item) for item in found)
                self.usage.dynamodb_rru[operation] += dynamo_units.read_units(size, consistent=consistent)
            else:
                cost = dynamo_units.write_cost(
                    before,
                    after,
                    succeeded=not failed_condition,
                    deleted=operation == "DeleteItem",
                    table_keys=spec.keys,
                    indexes=spec.indexes,
                )
                self.usage.dynamodb_wru[operation] += cost.table_units
                self.usage.dynamodb_wru[f"{operation} (indexes)"] += cost.index_units
                if failed_condition:
                    self.usage.dynamodb_failed_conditions[operation] += 1
                elif before is None and after is not None and key is not None:
                    self.usage.created_items.append((table, key))

    def _transaction(
        self,
        app: WsgiApp,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        request: dict[str, Any],
    ) -> Iterable[bytes]:
        """TransactWriteItems: each item as the write it is, at twice the units (DynamoDB bills a
        transactional write two WRUs per KB); a canceled transaction bills each item's check."""
        writes = []
        for entry in request.get("TransactItems", []):
            ((kind, item),) = entry.items()
            operation = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}.get(kind)
            spec = self.tables.get(str(item.get("TableName", "")))
            key = _item_key(operation, item, spec) if operation else None
            before = self.read_item(str(item["TableName"]), key) if key is not None else None
            writes.append((operation, spec, key, str(item.get("TableName", "")), before))
        status, response = _call(app, environ, start_response)
        canceled = status == 400 and b"TransactionCanceled" in response
        with self._lock:
            self.usage.calls["dynamodb.TransactWriteItems"] += 1
        for operation, spec, key, table, before in writes:
            if spec is None or operation is None or key is None or (status >= 300 and not canceled):
                continue
            after = self.read_item(table, key)
            cost = dynamo_units.write_cost(
                before,
                after,
                succeeded=not canceled,
                deleted=operation == "DeleteItem",
                table_keys=spec.keys,
                indexes=spec.indexes,
            )
            with self._lock:
                self.usage.dynamodb_wru[f"{operation} (transaction)"] += 2 * cost.table_units
                self.usage.dynamodb_wru[f"{operation} (transaction, indexes)"] += cost.index_units
                if canceled:
                    self.usage.dynamodb_failed_conditions["TransactWriteItems"] += 1
                elif before is None and after is not None:
                    self.usage.created_items.append((table, key))
        return [response]

    # --- S3 and the rest ------------------------------------------------------------------------------

    def _s3(
        self, app: WsgiApp, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "").lstrip("/")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        has_key = "/" in path and not path.endswith("/")
        presigned = "X-Amz-Credential" in query and "HTTP_AUTHORIZATION" not in environ
        status, response = _call(app, environ, start_response)
        operation, tier = _s3_class(method, has_key, query, environ)
        with self._lock:
            self.usage.calls[f"s3.{operation}"] += 1
            if tier == 1:
                self.usage.s3_tier1[operation] += 1
            elif tier == 2:
                self.usage.s3_tier2[operation] += 1
            if status < 300 and operation == "PutObject":
                self.usage.s3_stored.append((path.split("/", 1)[1], _upload_bytes(environ)))
            if status < 300 and presigned and method == "GET":
                self.usage.s3_presigned_get_bytes += len(response)
        return [response]

    def _json_call(self, service: str, operation: str, environ: dict[str, Any]) -> None:
        body = b""
        if service in ("sqs", "states"):
            body = _read_body(environ)
        with self._lock:
            self.usage.calls[f"{service}.{operation}"] += 1
            if service == "sqs":
                self.usage.sqs_requests += sqs_requests(len(body))
            if service == "states" and operation == "StartExecution":
                machine = str(json.loads(body or b"{}").get("stateMachineArn", "")).rsplit(":", 1)[-1]
                self.usage.state_machine_starts[machine] += 1


def _service(environ: Mapping[str, Any]) -> str:
    """The service of a SigV4 request: from its Authorization header, or a presigned URL's credential."""
    credential = ""
    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    if "Credential=" in authorization:
        credential = authorization.split("Credential=", 1)[1].split(",", 1)[0]
    else:
        credential = parse_qs(str(environ.get("QUERY_STRING", ""))).get("X-Amz-Credential", [""])[0]
    parts = credential.split("/")
    return parts[3] if len(parts) >= 5 else "unknown"


def _s3_class(
    method: str, has_key: bool, query: Mapping[str, Any], environ: Mapping[str, Any]
) -> tuple[str, int]:
    """(operation, price tier): 1 = PUT/COPY/POST/LIST, 2 = GET/HEAD and other, 0 = free (DELETE)."""
    if method in _S3_FREE or (method == "POST" and "delete" in query):
        return "DeleteObject(s)", 0
    if method == "PUT" and has_key:
        copy = "HTTP_X_AMZ_COPY_SOURCE" in environ
        return ("CopyObject" if copy else "UploadPart" if "partNumber" in query else "PutObject"), 1
    if method in ("PUT", "POST"):
        return f"{method} {'object' if has_key else 'bucket'}", 1
    if method == "GET" and not has_key and (not query or {"list-type", "versions", "uploads"} & set(query)):
        return "ListObjects", 1
    if has_key and method in ("GET", "HEAD"):
        return ("GetObject" if method == "GET" else "HeadObject"), 2
    return f"{method} bucket", 2


def _upload_bytes(environ: Mapping[str, Any]) -> int:
    decoded = environ.get("HTTP_X_AMZ_DECODED_CONTENT_LENGTH")  # aws-chunked uploads carry both
    return int(decoded or environ.get("CONTENT_LENGTH") or 0)


def _item_key(operation: str, request: Mapping[str, Any], spec: TableSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    if operation == "PutItem":
        item = request.get("Item", {})
        return {name: item[name] for name in spec.keys if name in item}
    if operation in ("UpdateItem", "DeleteItem", "GetItem"):
        return dict(request.get("Key", {}))
    return None


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, put back for the app to read."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _call(app: WsgiApp, environ: dict[str, Any], start_response: Callable[..., Any]) -> tuple[int, bytes]:
    """Run the app to completion: (status code, response body)."""
    seen: list[str] = []

    def recording_start_response(status: str, headers: Any, *exc_info: Any) -> Any:
        seen.append(status)
        return start_response(status, headers, *exc_info)

    result = app(environ, recording_start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return int(seen[-1].split(" ", 1)[0]) if seen else 500, body
