"""The caller's side of the fault run and the crash-point tests: webhook receivers that behave as real
ones do, and the images a caller serves by URL.

``Receivers`` is one ASGI app. ``GET /images/<tag>.png`` serves the sample image (a unique URL per job,
so the WaveSpeed emulator's per-image submission counts name the job). ``POST /hooks/<behaviour>``
verifies the webhook with the ``standardwebhooks`` library (401 if it does not verify), records it by
the job's metadata tag, and answers as the behaviour says:

- ``ok``: 204 at once;
- ``slow``: 204 after a delay drawn in ``slow_s`` (kept under the sender's attempt budget);
- ``trickle``: the first attempt of each webhook-id gets a 200 head and then one body byte every
  ``trickle_interval_s`` for ``trickle_for_s`` (longer than the budget allows): the sender must cut the
  attempt at its budget and retry; later attempts get 204. When the sender hung up is recorded;
- ``gone``: 410 (the sender must stop: refused, no retries);
- ``failing``: 503 every time (the sender retries on its schedule, then dead-letters the delivery).

``FlakyServer`` serves the same app on a port of its own that goes down (connections refused: nothing
listens) for ``down_s`` every ``cycle_s`` and comes back on the same port: the ``down`` behaviour.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from maskgate_local.stack.servers import RunningServer, free_port, serve_in_thread

BEHAVIOURS = ("ok", "slow", "trickle", "down", "gone", "failing")
# what the caller's last word on each behaviour's delivery should be (checked by ``check``)
DELIVERY = {
    "ok": "delivered",
    "slow": "delivered",
    "trickle": "delivered",
    "down": "delivered",  # down for less than the retry schedule lasts: delivered once it is back
    "gone": "gave_up",  # a 410 (or any 4xx but 429) stops the delivery: the receiver refused it
    "failing": "dead_lettered",
}


@dataclass(frozen=True)
class Hook:
    """One verified webhook request as the receiver saw it."""

    tag: str
    job_id: str
    webhook_id: str
    event: str
    status: str
    error_type: str | None
    received_at: float
    behaviour: str = "ok"
    answered: int = 204  # the status the receiver answered (200 for a trickled answer)


@dataclass(frozen=True)
class Cut:
    """A trickled answer: how long after its head the sender hung up (None: it read to the end)."""

    webhook_id: str
    tag: str
    after_s: float | None


@dataclass
class Behaviour:
    """The receivers' timings (seconds)."""

    slow_s: tuple[float, float] = (0.3, 1.5)
    trickle_interval_s: float = 0.5
    trickle_for_s: float = 30.0
    seed: int = 0


class Receivers:
    """The caller's webhook receivers and image server, one ASGI app (see the module's docstring)."""

    def __init__(self, *, secret: str, image: bytes, behaviour: Behaviour | None = None) -> None:
        self._webhook = Webhook(secret)
        self._image = image
        self.behaviour = behaviour or Behaviour()
        self._rng = random.Random(self.behaviour.seed)  # delays, not secrets
        self._lock = threading.Lock()
        self._arrived: dict[str, threading.Event] = {}
        self._trickled: set[str] = set()
        self.hooks: list[Hook] = []
        self.cuts: list[Cut] = []
        self.unverified = 0
        self.image_reads: Counter[str] = Counter()
        self.last_hook_at = time.monotonic()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path = request.url.path
        if request.method == "GET" and path.startswith("/images/"):
            with self._lock:
                self.image_reads[path] += 1
            await Response(self._image, media_type="image/png")(scope, receive, send)
            return
        behaviour = path.removeprefix("/hooks").strip("/").split("/", 1)[0] or "ok"
        if request.method != "POST" or not path.startswith("/hooks") or behaviour not in BEHAVIOURS:
            await Response(status_code=404)(scope, receive, send)
            return
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            payload = self._webhook.verify(body, headers)
        except WebhookVerificationError:
            with self._lock:
                self.unverified += 1
            await Response(status_code=401)(scope, receive, send)
            return
        msg_id = headers.get("webhook-id", "")
        answer = await self._answer(behaviour, msg_id)
        hook = self._record(payload, msg_id, behaviour, 200 if answer is None else answer)
        if answer is None:
            await self._trickle(hook, receive, send)
        else:
            await Response(status_code=answer)(scope, receive, send)

    async def _answer(self, behaviour: str, msg_id: str) -> int | None:
        """The status to answer, or None to trickle this attempt."""
        if behaviour == "slow":
            with self._lock:
                delay = self._rng.uniform(*self.behaviour.slow_s)
            await asyncio.sleep(delay)
        elif behaviour == "trickle":
            with self._lock:
                first = msg_id not in self._trickled
                self._trickled.add(msg_id)
            if first:
                return None
        return {"gone": 410, "failing": 503}.get(behaviour, 204)

    async def _trickle(self, hook: Hook, receive: Receive, send: Send) -> None:
        """A 200 head, then a byte per interval until the sender hangs up or ``trickle_for_s`` passed."""
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        started = time.monotonic()
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            while not gone.is_set() and time.monotonic() - started < self.behaviour.trickle_for_s:
                await send({"type": "http.response.body", "body": b".", "more_body": True})
                try:
                    await asyncio.wait_for(gone.wait(), self.behaviour.trickle_interval_s)
                except TimeoutError:
                    pass
            if not gone.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
        cut = Cut(hook.webhook_id, hook.tag, time.monotonic() - started if gone.is_set() else None)
        with self._lock:
            self.cuts.append(cut)

    def _record(self, payload: dict[str, Any], webhook_id: str, behaviour: str, answered: int) -> Hook:
        data = payload.get("data") or {}
        tag = str((data.get("metadata") or {}).get("tag", ""))
        error = data.get("error") or {}
        hook = Hook(
            tag=tag,
            job_id=str(data.get("id", "")),
            webhook_id=webhook_id,
            event=str(payload.get("type", "")),
            status=str(data.get("status", "")),
            error_type=error.get("type") if isinstance(error, dict) else None,
            received_at=time.time(),
            behaviour=behaviour,
            answered=answered,
        )
        with self._lock:
            self.hooks.append(hook)
            self.last_hook_at = time.monotonic()
            self._event(tag).set()
        return hook

    def reset(self) -> None:
        """Forget what arrived (after a warm-up)."""
        with self._lock:
            self.hooks.clear()
            self.cuts.clear()
            self._trickled.clear()
            self.unverified = 0
            self.image_reads.clear()

    def _event(self, tag: str) -> threading.Event:
        return self._arrived.setdefault(tag, threading.Event())

    def wait(self, tag: str, timeout: float) -> bool:
        """True once a verified webhook for the job tagged ``tag`` arrived (waits up to ``timeout``)."""
        with self._lock:
            arrived = self._event(tag)
        return arrived.wait(timeout)

    def for_tag(self, tag: str) -> list[Hook]:
        with self._lock:
            return [h for h in self.hooks if h.tag == tag]


class FlakyServer:
    """``app`` on a port of its own that is down (refusing connections) ``down_s`` in every ``cycle_s``."""

    def __init__(self, app: Any, *, cycle_s: float = 8.0, down_s: float = 3.0) -> None:
        if not 0 < down_s < cycle_s:
            raise ValueError("down_s must be in (0, cycle_s)")
        self._app = app
        self.cycle_s, self.down_s = cycle_s, down_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.outages: list[tuple[float, float]] = []  # (went down, came back), time.time()
        self.restart_errors: list[str] = []
        self._stop = threading.Event()
        self._server: RunningServer | None = self._serve()
        self._thread = threading.Thread(target=self._cycle, name="flaky-receiver", daemon=True)
        self._thread.start()

    def _serve(self) -> RunningServer | None:
        for _ in range(20):
            try:
                return serve_in_thread(self._app, port=self.port)
            except (RuntimeError, TimeoutError) as exc:  # the port is briefly busy: try again
                self.restart_errors.append(str(exc)[:200])
                if self._stop.wait(0.1):
                    return None
        return None

    def _cycle(self) -> None:
        while not self._stop.wait(self.cycle_s - self.down_s):
            server, self._server = self._server, None
            went_down = time.time()
            if server is not None:
                server.stop()
            stopped = self._stop.wait(self.down_s)
            self._server = self._serve()
            self.outages.append((went_down, time.time()))
            if stopped:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.cycle_s + 10)
        if self._server is not None:
            self._server.stop()
            self._server = None


@dataclass
class CallerSide:
    """The running receivers: the app, its steady server and the flaky one; ``hook_url`` per behaviour."""

    receivers: Receivers
    server: RunningServer
    flaky: FlakyServer | None = None
    _stops: list[Callable[[], None]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def hook_url(self, behaviour: str) -> str:
        if behaviour == "down":
            if self.flaky is None:
                raise RuntimeError("no flaky server: start the caller side with flaky=True")
            return f"{self.flaky.url}/hooks/down"
        return f"{self.server.url}/hooks/{behaviour}"

    def image_url(self, tag: str) -> str:
        return f"{self.server.url}/images/{tag}.png"

    def stop(self) -> None:
        if self.flaky is not None:
            self.flaky.stop()
        self.server.stop()


def start_caller_side(
    *,
    secret: str,
    image: bytes,
    behaviour: Behaviour | None = None,
    flaky: bool = False,
    **flaky_timing: float,
) -> CallerSide:
    """Start the receivers (and, with ``flaky``, the server that goes down now and then)."""
    receivers = Receivers(secret=secret, image=image, behaviour=behaviour)
    server = serve_in_thread(receivers)
    try:
        down = FlakyServer(receivers, **flaky_timing) if flaky else None
    except BaseException:
        server.stop()
        raise
    return CallerSide(receivers=receivers, server=server, flaky=down)
