"""The WaveSpeed emulator's edges: envelopes, v3 callback signing, image fetching, callback posting."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import threading
import time
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

FETCH_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
WEBHOOK_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
MAX_IMAGE_BYTES = 32 * 1024 * 1024


class ImageUnavailable(Exception):
    """The image could not be fetched the way WaveSpeed would fetch it."""


def sign_callback(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """WaveSpeed's v3 signature: hex HMAC-SHA256 keyed by the secret without ``whsec_`` (UTF-8)."""
    key = secret.removeprefix("whsec_").encode()
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v3,{digest}"


def envelope(data: Any, *, code: int = 200, message: str = "success") -> dict[str, Any]:
    return {"code": code, "message": message, "data": data}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(envelope(None, code=status, message=message), status_code=status, headers=headers)


async def http_error(_request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown route, wrong method) in WaveSpeed's envelope."""
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    detail = exc.detail if isinstance(exc, StarletteHTTPException) else "internal error"
    return error_response(status, str(detail))


def describe(exc: ValueError) -> str:
    """A one-line account of a JSON or validation error."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()
        )
    return str(exc)


def fetch_image(http: httpx.Client, image: str, *, loopback_only: bool) -> bytes:
    """The image bytes from a data URI or an http(s) URL (no redirects, capped)."""
    if image.lower().startswith("data:"):
        return data_uri_bytes(image)
    if loopback_only and not is_loopback(image):
        raise ImageUnavailable("failed to download image: host unreachable from the emulator")
    try:
        with http.stream("GET", image, timeout=FETCH_TIMEOUT) as response:
            if response.status_code != 200:
                raise ImageUnavailable(f"failed to download image: HTTP {response.status_code}")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_IMAGE_BYTES:
                    raise ImageUnavailable("failed to download image: larger than 32 MB")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise ImageUnavailable(f"failed to download image: {type(exc).__name__}") from exc
    return b"".join(chunks)


def post_callback(
    http: httpx.Client, url: str, *, secret: str, webhook_id: str, body: bytes, loopback_only: bool
) -> bool:
    """One signed delivery; True on a 2xx answer. Never raises for transport errors."""
    if loopback_only and not is_loopback(url):
        return False
    timestamp = str(int(time.time()))
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": sign_callback(secret, webhook_id, timestamp, body),
    }
    try:
        response = http.post(url, content=body, headers=headers, timeout=WEBHOOK_TIMEOUT)
    except httpx.HTTPError:
        return False
    return response.is_success


def data_uri_bytes(uri: str) -> bytes:
    header, separator, payload = uri.partition(",")
    if not separator:
        raise ImageUnavailable("invalid data URI: no comma")
    if header.lower().endswith(";base64"):
        try:
            return base64.b64decode("".join(payload.split()), validate=True)
        except binascii.Error as exc:
            raise ImageUnavailable("invalid data URI: bad base64") from exc
    return unquote_to_bytes(payload)


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def wait_for_event(event: threading.Event, timeout: float) -> bool:
    """Wait for a worker's event without holding a thread (sync mode may wait on many at once)."""
    deadline = time.monotonic() + timeout
    while not event.is_set():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True
