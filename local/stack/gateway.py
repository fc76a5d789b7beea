"""An API Gateway HTTP API emulator: each request becomes a payload format 2.0 Lambda event.

As API Gateway does: header names lower-cased, repeated headers and query parameters joined with
commas, cookies moved out of the headers into ``cookies``, ``queryStringParameters`` and
``pathParameters`` left out when empty (values URL-decoded), the body base64-encoded unless its
content type is text (``text/*``, JSON, form, XML, ``+json``, ``+xml``). Routes are matched most
specific first: literal paths, then fewer ``{param}`` segments, greedy ``{proxy+}`` last, and a
method before ``ANY``; ``$default`` catches the rest.

Size bands: a body over 10 MB gets the gateway's own 413; an event over Lambda's 6 MB invoke payload
gets a 500 without invoking. ``invoke`` raising (a function error, including a function that timed
out or crashed: ``FunctionError``) is a 500 ``{"message": "Internal Server Error"}`` too, as HTTP APIs
answer a failed Lambda integration; the emulator keeps serving.

Responses for payload 2.0: a dict with ``statusCode`` gives status, ``headers``, ``cookies`` (one
``set-cookie`` each) and ``body`` (base64-decoded when ``isBase64Encoded``); any other JSON result is a
200 ``application/json`` whose body is the result (a string as is, anything else serialised).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload quota
MAX_INVOKE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invoke request payload
MAX_DRAIN_BYTES = 64 * 1024 * 1024
ACCOUNT_ID = "123456789012"
_TEXT_TYPES = ("application/json", "application/x-www-form-urlencoded", "application/xml")
_HOP_HEADERS = ("content-length", "transfer-encoding", "connection")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class FunctionError(Exception):
    """The function ended in error (Lambda's ``FunctionError``): the gateway answers 500."""


Invoke = Callable[[str, dict[str, Any]], dict[str, Any] | str | None]


@dataclass(frozen=True)
class Route:
    """``method`` (or ``ANY``) and ``path`` (``/v1/items/{id}``, ``/{proxy+}`` or ``$default``)."""

    method: str
    path: str
    function_name: str

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method.upper()} {self.path}"


class _CompiledRoute:
    def __init__(self, route: Route) -> None:
        self.route = route
        self.method = route.method.upper()
        segments = [] if route.path == "$default" else route.path.strip("/").split("/")
        self.params = sum(1 for s in segments if s.startswith("{"))
        self.greedy = any(s.endswith("+}") for s in segments)
        self.regex = re.compile("^/" + "/".join(_segment_pattern(s) for s in segments) + "$")
        self.priority = (route.path == "$default", self.greedy, self.params, self.method == "ANY")

    def match(self, method: str, raw_path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        if self.route.path == "$default":
            return {}
        found = self.regex.match(raw_path)
        if found is None:
            return None
        return {name: unquote(value) for name, value in found.groupdict().items()}


def _segment_pattern(segment: str) -> str:
    if segment.startswith("{") and segment.endswith("+}"):
        return f"(?P<{segment[1:-2]}>.+)"
    if segment.startswith("{") and segment.endswith("}"):
        return f"(?P<{segment[1:-1]}>[^/]+)"
    return re.escape(segment)


class ApiGatewayEmulator:
    """The HTTP API in front of Lambda functions, as an ASGI ``app``."""

    def __init__(
        self,
        *,
        routes: list[Route],
        invoke: Invoke,
        api_id: str = "local",
        stage: str = "$default",
        now: Callable[[], float] = time.time,
    ) -> None:
        self._routes = sorted((_CompiledRoute(r) for r in routes), key=lambda r: r.priority)
        self._invoke = invoke
        self.api_id = api_id
        self.stage = stage
        self._now = now

    @property
    def app(self) -> ApiGatewayEmulator:
        """The ASGI application (the emulator itself)."""
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        response = await self._handle(Request(scope, receive))
        await response(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        request_id = _request_id()
        body = await _read_body(request)
        if body is None:
            return _message(413, "Request Entity Too Large", request_id)
        raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        found = self._match(request.method, raw_path)
        if found is None:
            return _message(404, "Not Found", request_id)
        route, path_parameters = found
        event = self.build_event(request, route, path_parameters, body, raw_path, request_id)
        if len(json.dumps(event).encode()) > MAX_INVOKE_BYTES:
            logger.info("event over the Lambda invoke limit", extra={"route": route.route_key})
            return _message(500, "Internal Server Error", request_id)
        try:
            result = await asyncio.to_thread(self._invoke, route.function_name, event)
            return to_response(result, request_id)
        except FunctionError as exc:  # expected when a crash is injected: no stack trace
            logger.warning("function error: %s", exc, extra={"route": route.route_key})
            return _message(500, "Internal Server Error", request_id)
        except Exception:
            logger.exception("integration failed", extra={"route": route.route_key})
            return _message(500, "Internal Server Error", request_id)

    def _match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        if self.stage != "$default":
            prefix = f"/{self.stage}"
            if not raw_path.startswith(prefix + "/"):
                return None
            raw_path = raw_path[len(prefix) :]
        for compiled in self._routes:
            params = compiled.match(method.upper(), raw_path)
            if params is not None:
                return compiled.route, params
        return None

    def build_event(
        self,
        request: Request,
        route: Route,
        path_parameters: dict[str, str],
        body: bytes,
        raw_path: str,
        request_id: str,
    ) -> dict[str, Any]:
        """The payload format 2.0 event for one request."""
        headers, cookies = _headers_and_cookies(request)
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": raw_path,
            "rawQueryString": raw_query,
        }
        if cookies:
            event["cookies"] = cookies
        event["headers"] = headers
        query = _joined(parse_qsl(raw_query, keep_blank_values=True))
        if query:
            event["queryStringParameters"] = query
        event["requestContext"] = self._request_context(request, route, headers, raw_path, request_id)
        if path_parameters:
            event["pathParameters"] = path_parameters
        event.update(_body_fields(body, headers.get("content-type", "")))
        return event

    def _request_context(
        self, request: Request, route: Route, headers: dict[str, str], raw_path: str, request_id: str
    ) -> dict[str, Any]:
        epoch = self._now()
        domain = headers.get("host", "localhost").rsplit(":", 1)[0] or "localhost"
        return {
            "accountId": ACCOUNT_ID,
            "apiId": self.api_id,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": request.method.upper(),
                "path": raw_path,
                "protocol": f"HTTP/{request.scope.get('http_version', '1.1')}",
                "sourceIp": request.client.host if request.client else "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": self.stage,
            "time": _clf_time(epoch),
            "timeEpoch": int(epoch * 1000),
        }


def to_response(result: Any, request_id: str = "") -> Response:
    """API Gateway's reading of a payload 2.0 Lambda result."""
    extra = {"apigw-requestid": request_id} if request_id else {}
    if not (isinstance(result, dict) and "statusCode" in result):
        body = result if isinstance(result, str) else json.dumps(result)
        return Response(body, 200, headers={"content-type": "application/json", **extra})
    status = result["statusCode"]
    body = result.get("body") or ""
    if not isinstance(status, int) or not isinstance(body, str):
        raise TypeError("malformed Lambda proxy response")
    content = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = [(str(k).lower(), str(v)) for k, v in (result.get("headers") or {}).items()]
    headers += [("set-cookie", str(cookie)) for cookie in result.get("cookies") or []]
    headers += list(extra.items())
    response = Response(content, status)  # its only header is content-length
    response.raw_headers += [
        (k.encode("latin-1"), v.encode("latin-1")) for k, v in headers if k not in _HOP_HEADERS
    ]
    return response


async def _read_body(request: Request) -> bytes | None:
    """The body, or None when it is over API Gateway's quota (the rest is drained, not kept)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_REQUEST_BYTES:
            chunks.append(chunk)
        elif size > MAX_DRAIN_BYTES:
            break
    return b"".join(chunks) if size <= MAX_REQUEST_BYTES else None


def _headers_and_cookies(request: Request) -> tuple[dict[str, str], list[str]]:
    pairs: list[tuple[str, str]] = []
    cookies: list[str] = []
    for name, value in request.headers.items():
        if name.lower() == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
        else:
            pairs.append((name.lower(), value))
    headers = _joined(pairs)
    client = request.client
    headers.setdefault("x-forwarded-for", client.host if client else "127.0.0.1")
    headers.setdefault("x-forwarded-proto", request.url.scheme)
    if request.url.port:
        headers.setdefault("x-forwarded-port", str(request.url.port))
    headers.setdefault("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}")
    return headers, cookies


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in pairs:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def _body_fields(body: bytes, content_type: str) -> dict[str, Any]:
    if not body:
        return {"isBase64Encoded": False}
    if _is_text(content_type):
        try:
            return {"body": body.decode("utf-8"), "isBase64Encoded": False}
        except UnicodeDecodeError:
            pass
    return {"body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}


def _is_text(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml"))


def _message(status: int, message: str, request_id: str) -> Response:
    return JSONResponse({"message": message}, status, headers={"apigw-requestid": request_id})


def _request_id() -> str:
    return base64.b64encode(os.urandom(11)).decode("ascii")


def _clf_time(epoch: float) -> str:
    t = time.gmtime(epoch)
    clock = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{clock} +0000"


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
