"""Request body cap: bodies over the limit get a 413 problem pointing to direct uploads."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maskgate.api.problems import problem_response
from maskgate.errors import PayloadTooLarge


class BodySizeLimit:
    """Pure ASGI middleware: refuse declared or streamed bodies over ``limit_bytes``."""

    def __init__(self, app: ASGIApp, *, limit_bytes: Callable[[], int]) -> None:
        self.app = app
        self._limit = limit_bytes

    @property
    def limit(self) -> int:
        return self._limit()

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"request bodies are limited to {self.limit:,} bytes; send a larger image with POST /v1/uploads "
            "(a presigned upload of up to 20 MB) or put it in the bucket under uploads/"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await problem_response(self._too_large())(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            body.extend(message.get("body", b""))
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await problem_response(self._too_large())(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)
