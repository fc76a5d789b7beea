"""A webhook receiver for the demo and the end-to-end tests: verifies every delivery with the
``standardwebhooks`` library, as any integrator would, and keeps what arrived."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    verified: bool
    payload: dict[str, Any] | None
    received_at: float


@dataclass
class WebhookReceiver:
    """An ASGI app answering ``status`` (default 204) and recording each delivery."""

    secret: str
    status: int = 204
    script: list[int] = field(default_factory=list)  # answers for the next verified deliveries, in order
    deliveries: list[Delivery] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            payload = Webhook(self.secret).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload, verified = None, False
        with self._changed:
            self.deliveries.append(Delivery(headers, body, verified, payload, time.time()))
            answer = (self.script.pop(0) if self.script else self.status) if verified else 401
            self._changed.notify_all()
        await Response(status_code=answer)(scope, receive, send)

    def wait_for(self, job_id: str, *, timeout: float = 60.0) -> Delivery:
        """The first verified delivery for ``job_id``, waiting up to ``timeout`` seconds."""
        return self.wait_until(lambda p: p["data"].get("id") == job_id, timeout=timeout, what=job_id)

    def wait_until(
        self, matches: Callable[[dict[str, Any]], bool], *, timeout: float = 60.0, what: str = "a webhook"
    ) -> Delivery:
        """The first verified delivery whose payload ``matches``, waiting up to ``timeout`` seconds.

        Each wake-up looks only at the deliveries that arrived since the last (every delivery wakes
        every waiter: with dozens waiting, rescanning them all made the wait quadratic)."""
        deadline = time.monotonic() + timeout
        scanned = 0
        with self._changed:
            while True:
                scanned = min(scanned, len(self.deliveries))  # a caller may have emptied the list
                for delivery in self.deliveries[scanned:]:
                    if delivery.verified and delivery.payload is not None and matches(delivery.payload):
                        return delivery
                scanned = len(self.deliveries)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [json.loads(d.body or b"{}").get("data", {}).get("id") for d in self.deliveries]
                    raise TimeoutError(f"no verified webhook for {what} within {timeout}s (saw {seen})")
                self._changed.wait(remaining)

    def for_job(self, job_id: str) -> list[Delivery]:
        with self._changed:
            return [d for d in self.deliveries if d.payload and d.payload["data"].get("id") == job_id]
