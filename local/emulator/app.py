"""A stand-in for WaveSpeed's hosted SAM3 API, with real masks and fault injection.

Wire shapes follow wavespeed.ai/docs: ``POST /api/v3/wavespeed-ai/sam3-image[?webhook=URL]`` answers
an envelope ``{code, message, data}`` holding the prediction; ``GET /api/v3/predictions/{id}/result``
reads it (``created`` → ``processing`` → ``completed`` | ``failed``, a failure is HTTP 200);
``POST /api/v3/predictions {page, page_size 1..100, model?, status?, created_after?, created_before?}``
pages the history (the past 7 days, newest first; the time bounds are inclusive here, WaveSpeed does
not say). The callback is the prediction without envelope, signed ``webhook-signature:
v3,<hex HMAC-SHA256>`` over ``"{webhook-id}.{webhook-timestamp}.{body}"`` keyed by the secret minus
``whsec_``.
Outputs are served by the emulator itself under ``/outputs/{id}/0.{ext}``.

Control endpoints (no auth): ``GET|PUT|PATCH /_emulator/faults`` (PUT replaces, PATCH merges),
``GET /_emulator/stats``, ``POST /_emulator/reset``. Only loopback hosts are fetched or called back
unless ``loopback_only=False``.
"""

from __future__ import annotations

import hmac
import json
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from maskgate_local.emulator.edges import (
    ImageUnavailable,
    describe,
    envelope,
    error_response,
    fetch_image,
    http_error,
    post_callback,
    wait_for_event,
)
from maskgate_local.emulator.masks import CONTENT_TYPES, Box, Point, corrupt, decode_image, segment
from maskgate_local.emulator.models import (
    MODEL,
    Faults,
    HistoryQuery,
    PredictionRecord,
    Stats,
    SubmitBody,
    history_page,
    image_key,
)

RETRY_AFTER_S = 1


def _utcnow() -> datetime:
    return datetime.now(UTC)


FAILED_ERROR = "prediction failed: the model raised an internal error (emulated fault)"


class WaveSpeedEmulator:
    """The emulated API as an ASGI ``app``; state is shared safely between requests and workers."""

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str | None = None,
        public_url: Callable[[], str] | None = None,
        latency_s: tuple[float, float] = (0.05, 0.2),
        seed: int | None = None,
        sync_timeout_s: float = 60.0,
        loopback_only: bool = True,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.api_key = api_key
        self._clock = clock
        self.webhook_secret = webhook_secret or "whsec_" + secrets.token_urlsafe(24)
        self._public_url = public_url
        self._seed = seed
        self._sync_timeout_s = sync_timeout_s
        self._loopback_only = loopback_only
        self._default_faults = Faults(latency_s=latency_s)
        self._lock = threading.Lock()
        self._http = httpx.Client(
            transport=transport, follow_redirects=False, limits=httpx.Limits(max_connections=512)
        )
        self._stop = threading.Event()
        self._faults = self._default_faults
        self._rng = random.Random(seed)  # noqa: S311 - fault draws, not secrets
        self._predictions: dict[str, PredictionRecord] = {}
        self._stats = Stats()
        self.app = self._build_app()

    # -- public controls -------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self._stats.snapshot(list(self._predictions.values()))

    def prediction(self, prediction_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._predictions.get(prediction_id)
            return record.data() if record else None

    def reset(self) -> None:
        """Forget every prediction, count and fault; in-flight work is abandoned."""
        with self._lock:
            self._stop.set()
            self._stop = threading.Event()
            self._faults = self._default_faults
            self._rng = random.Random(self._seed)  # noqa: S311 - fault draws, not secrets
            self._predictions = {}
            self._stats = Stats()

    def close(self) -> None:
        with self._lock:
            self._stop.set()
        self._http.close()

    # -- routes ----------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="WaveSpeed emulator", docs_url=None, redoc_url=None, openapi_url=None)
        app.add_exception_handler(StarletteHTTPException, http_error)
        app.add_api_route(f"/api/v3/{MODEL}", self._submit, methods=["POST"])
        app.add_api_route("/api/v3/predictions", self._history, methods=["POST"])
        app.add_api_route("/api/v3/predictions/{prediction_id}/result", self._result, methods=["GET"])
        app.add_api_route("/api/v3/predictions/{prediction_id}", self._result, methods=["GET"])
        app.add_api_route("/api/v3/webhook/secret", self._secret, methods=["GET"])
        app.add_api_route("/outputs/{prediction_id}/{name}", self._output, methods=["GET"])
        app.add_api_route("/_emulator/faults", self._get_faults, methods=["GET"])
        app.add_api_route("/_emulator/faults", self._put_faults, methods=["PUT", "PATCH"])
        app.add_api_route("/_emulator/stats", self._get_stats, methods=["GET"])
        app.add_api_route("/_emulator/reset", self._reset, methods=["POST"])
        return app

    async def _submit(self, request: Request) -> Response:
        if not self._authorized(request):
            return error_response(401, "Unauthorized: invalid or missing API key")
        refusal = self._draw_refusal()
        if refusal is not None:
            return refusal
        try:
            raw = json.loads(await request.body())
            body = SubmitBody.model_validate(raw)
        except ValueError as exc:  # JSON and validation errors alike
            return error_response(400, f"invalid input: {describe(exc)}")
        webhook = request.query_params.get("webhook")
        if webhook is not None and urlsplit(webhook).scheme not in ("http", "https"):
            return error_response(400, "invalid input: webhook must be an http(s) URL")
        base_url = self._public_url() if self._public_url else str(request.base_url)
        record, data = self._create(body, raw, webhook, base_url.rstrip("/"))
        if body.enable_sync_mode:
            finished = await wait_for_event(record.done, self._sync_timeout_s)
            data = self.prediction(record.id) or data
            if not finished:
                data["error"] = f"Sync mode timed out after {self._sync_timeout_s} s; query the result later"
        return JSONResponse(envelope(data))

    async def _result(self, prediction_id: str, request: Request) -> Response:
        if not self._authorized(request):
            return error_response(401, "Unauthorized: invalid or missing API key")
        with self._lock:
            self._stats.polls += 1
            record = self._predictions.get(prediction_id)
            fault_status = 0
            if record is not None and self._rng.random() < self._faults.result_5xx:
                self._stats.result_5xx += 1
                fault_status = self._rng.choice((500, 503))
            data = record.data() if record is not None else None
        if data is None:
            return error_response(404, f"prediction {prediction_id} not found")
        if fault_status:
            return error_response(fault_status, "internal server error (emulated fault)")
        return JSONResponse(envelope(data))

    async def _history(self, request: Request) -> Response:
        if not self._authorized(request):
            return error_response(401, "Unauthorized: invalid or missing API key")
        try:
            query = HistoryQuery.model_validate(json.loads(await request.body()))
        except ValueError as exc:  # JSON and validation errors alike
            return error_response(400, f"invalid input: {describe(exc)}")
        with self._lock:
            page = history_page(list(self._predictions.values()), query, now=self._clock())
        return JSONResponse(envelope(page))

    async def _secret(self, request: Request) -> Response:
        if not self._authorized(request):
            return error_response(401, "Unauthorized: invalid or missing API key")
        return JSONResponse(envelope({"secret": self.webhook_secret}))

    async def _output(self, prediction_id: str, name: str) -> Response:
        with self._lock:
            record = self._predictions.get(prediction_id)
            file = record.files.get(name) if record is not None else None
            if file is not None:
                self._stats.output_reads += 1
        if file is None:
            return error_response(404, "output not found")
        content, media_type = file
        return Response(content, media_type=media_type)

    async def _get_faults(self) -> Response:
        return JSONResponse(self.faults.model_dump(mode="json"))

    async def _put_faults(self, request: Request) -> Response:
        try:
            changes = json.loads(await request.body())
            if not isinstance(changes, dict):
                raise ValueError("faults must be a JSON object")
            base = self.faults.model_dump() if request.method == "PATCH" else {}
            faults = Faults.model_validate({**base, **changes})
        except ValueError as exc:
            return error_response(400, f"invalid faults: {describe(exc)}")
        self.set_faults(faults)
        return JSONResponse(faults.model_dump(mode="json"))

    async def _get_stats(self) -> Response:
        return JSONResponse(self.stats())

    async def _reset(self) -> Response:
        self.reset()
        return JSONResponse({"reset": True})

    # -- submission and processing ----------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), self.api_key.encode())

    def _draw_refusal(self) -> Response | None:
        """submit_429 / submit_5xx: refused before any prediction exists, so a retry is safe."""
        with self._lock:
            if self._rng.random() < self._faults.submit_429:
                self._stats.refused_429 += 1
                return error_response(
                    429, "Too Many Requests: rate limit exceeded", {"Retry-After": str(RETRY_AFTER_S)}
                )
            if self._rng.random() < self._faults.submit_5xx:
                self._stats.refused_503 += 1
                return error_response(503, "Service Unavailable: please retry")
        return None

    def _create(
        self, body: SubmitBody, raw: dict[str, Any], webhook: str | None, base_url: str
    ) -> tuple[PredictionRecord, dict[str, Any]]:
        """Record the prediction and start its worker; the answer shows it as created."""
        with self._lock:
            record = PredictionRecord(
                id=uuid.uuid4().hex,
                body=body,
                raw_input=raw,
                base_url=base_url,
                webhook=webhook,
                webhook_id=uuid.uuid4().hex,
                plan=self._faults.draw(self._rng),
                created_at=self._clock(),
            )
            self._predictions[record.id] = record
            self._stats.submissions += 1
            self._stats.submissions_by_image[image_key(body.image)] += 1
            stop = self._stop
            created = record.data()
        worker = threading.Thread(
            target=self._process, args=(record, stop), name=f"prediction-{record.id[:8]}", daemon=True
        )
        worker.start()
        return record, created

    def _process(self, record: PredictionRecord, stop: threading.Event) -> None:
        plan = record.plan
        started = time.monotonic()
        if stop.wait(plan.latency_s * 0.25) or not self._mark_processing(record, stop) or plan.stuck:
            return
        files, error = self._outputs(record)
        remaining = plan.latency_s - (time.monotonic() - started)
        if stop.wait(max(0.0, remaining)):
            return
        elapsed_ms = int((time.monotonic() - started) * 1000)
        callback = self._finish(record, stop, files, error, elapsed_ms)
        if callback is None or not record.webhook:
            return
        if plan.drop_callback:
            with self._lock:
                self._stats.callbacks_dropped += 1
            return
        self._deliver(record.webhook, record, json.dumps(callback, separators=(",", ":")).encode())

    def _mark_processing(self, record: PredictionRecord, stop: threading.Event) -> bool:
        with self._lock:
            if stop.is_set():
                return False
            record.status = "processing"
            return True

    def _outputs(self, record: PredictionRecord) -> tuple[dict[str, tuple[bytes, str]], str]:
        if record.plan.fail:
            return {}, FAILED_ERROR
        body = record.body
        try:
            image = decode_image(fetch_image(self._http, body.image, loopback_only=self._loopback_only))
        except ImageUnavailable as exc:
            return {}, str(exc)
        except Exception as exc:  # whatever Pillow raises on bytes it cannot read
            return {}, f"failed to decode image: {type(exc).__name__}: {exc}"
        content = segment(
            image,
            prompt=body.prompt,
            points=[Point(p.x, p.y, p.label) for p in body.point_prompts],
            boxes=[Box(b.x_min, b.y_min, b.x_max, b.y_max) for b in body.box_prompts],
            apply_mask=body.apply_mask,
            output_format=body.output_format,
        )
        if record.plan.bad_output:
            content = corrupt(content)
        return {f"0.{body.output_format}": (content, CONTENT_TYPES[body.output_format])}, ""

    def _finish(
        self,
        record: PredictionRecord,
        stop: threading.Event,
        files: dict[str, tuple[bytes, str]],
        error: str,
        elapsed_ms: int,
    ) -> dict[str, Any] | None:
        with self._lock:
            if stop.is_set():
                return None
            record.files = files
            record.outputs = [f"{record.base_url}/outputs/{record.id}/{name}" for name in files]
            record.status = "failed" if error else "completed"
            record.error = error
            record.inference_ms = elapsed_ms
            record.done.set()
            return record.callback_body()

    def _deliver(self, url: str, record: PredictionRecord, body: bytes) -> None:
        """POST the signed callback; a duplicate delivery reuses the webhook-id. Failures are counted."""
        for _ in range(2 if record.plan.duplicate_callback else 1):
            delivered = post_callback(
                self._http,
                url,
                secret=self.webhook_secret,
                webhook_id=record.webhook_id,
                body=body,
                loopback_only=self._loopback_only,
            )
            with self._lock:
                self._stats.callbacks_sent += 1
                self._stats.callbacks_failed += 0 if delivered else 1
