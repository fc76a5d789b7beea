"""Plain-function fakes for httpx.MockTransport (a WaveSpeed API, a webhook receiver) and a clock."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
from PIL import Image

OUTPUT_HOST = "cdn.wavespeed.test"
T = TypeVar("T")


def image_bytes(fmt: str = "png", size: tuple[int, int] = (64, 48), color: int = 255) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, color).save(buffer, {"jpeg": "JPEG", "webp": "WEBP"}.get(fmt, fmt.upper()))
    return buffer.getvalue()


def envelope(data: dict[str, Any], code: int = 200) -> httpx.Response:
    return httpx.Response(
        code, json={"code": code, "message": "success" if code == 200 else "error", "data": data}
    )


@dataclass
class FakeWaveSpeed:
    """A WaveSpeed API in one function. ``next_status`` is what a new prediction reads as."""

    api_key: str = "ws-test-key"
    next_status: str = "completed"
    output_format: str = "png"
    submit_status: int = 200
    read_status: int = 200  # what reading a prediction answers (not 200: a refusal with that code)
    output_status: int = 200  # what downloading an output answers
    output: bytes | None = None  # the output file's bytes; None: a white mask in output_format
    submissions: list[dict[str, Any]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == OUTPUT_HOST:
            if self.output_status != 200:
                return httpx.Response(self.output_status, text="no")
            return httpx.Response(200, content=self.output or image_bytes(self.output_format))
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return httpx.Response(401, json={"code": 401, "message": "Unauthorized", "data": None})
        if request.method == "POST" and request.url.path == "/api/v3/wavespeed-ai/sam3-image":
            return self._submit(request)
        _, _, rest = request.url.path.partition("/api/v3/predictions/")
        prediction_id = rest.removesuffix("/result")
        if prediction_id in self.predictions and self.read_status != 200:
            return httpx.Response(
                self.read_status, json={"code": self.read_status, "message": "no", "data": None}
            )
        if prediction_id in self.predictions:
            return envelope(self.predictions[prediction_id])
        return httpx.Response(404, json={"code": 404, "message": "not found", "data": None})

    def _submit(self, request: httpx.Request) -> httpx.Response:
        if self.submit_status != 200:
            return httpx.Response(
                self.submit_status, json={"code": self.submit_status, "message": "no", "data": None}
            )
        body = json.loads(request.content)
        self.submissions.append(body)
        prediction_id = f"pred_{next(self._ids):04d}"
        outputs = [f"https://{OUTPUT_HOST}/outputs/{prediction_id}.{self.output_format}"]
        self.predictions[prediction_id] = {
            "id": prediction_id,
            "model": "wavespeed-ai/sam3-image",
            "status": self.next_status,
            "outputs": outputs if self.next_status == "completed" else [],
            "error": "image could not be decoded" if self.next_status == "failed" else "",
            "urls": {"get": f"https://api.wavespeed.test/api/v3/predictions/{prediction_id}/result"},
        }
        return envelope({**self.predictions[prediction_id], "status": "created", "outputs": []})


@dataclass
class Receiver:
    """A webhook receiver answering ``status`` and keeping every request it got."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return httpx.Response(self.status, headers=self.headers)


class Recording:
    """A plain function as a server (WaveSpeed, a webhook receiver): ``answer`` decides the response,
    and every request it saw is kept, body read."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.answer(request)


class Clock(Generic[T]):
    """A clock the test sets: calling it answers ``now`` (seconds, or a datetime), until moved."""

    def __init__(self, now: T) -> None:
        self.now = now

    def __call__(self) -> T:
        return self.now
