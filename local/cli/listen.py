"""``maskgate listen``: receive webhooks on 127.0.0.1, verify each with ``standardwebhooks`` and print it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from maskgate_local.cli.api import guarded, local_ready, out
from maskgate_local.cli.client import ApiProblem, ApiUnreachable, MaskgateClient
from maskgate_local.cli.targets import DEFAULT_READY_FILE, Stop


class Listener:
    """An ASGI app that verifies each delivery with ``standardwebhooks`` and prints it; answers 204
    when the signature verifies, 401 when not.

    It verifies with ``secret`` and, when given ``endpoint_secrets`` (the local stack's registered
    endpoints, each of which signs with its own secret), with theirs: looked up when a delivery
    matches none of the secrets known, at most once every ``LOOKUP_EVERY_S`` seconds (so an endpoint
    created after the listener started is verified too, and a flood of forgeries costs one lookup)."""

    LOOKUP_EVERY_S = 2.0

    def __init__(
        self,
        secret: str,
        say: Callable[[str], None] = out,
        *,
        endpoint_secrets: Callable[[], dict[str, str] | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from standardwebhooks import Webhook

        self._webhook = Webhook(secret)
        self._endpoints: dict[str, Any] = {}  # endpoint id → its Webhook
        self._endpoint_secrets = endpoint_secrets
        self._clock = clock
        self._looked_up_at: float | None = None
        self._say = say
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        # in a worker thread: a lookup of the endpoints' secrets calls the API, and the loop serves on
        status = await asyncio.to_thread(self.receive, scope["method"], scope["path"], headers, body)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def receive(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:  # one delivery at a time: the printed lines and the secrets stay in order
            return self._receive(method, path, headers, body)

    def _receive(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        from standardwebhooks import WebhookVerificationError

        try:
            payload, signer = self._verify(body, headers)
            verified, why = True, "signature verified" + (f" (endpoint {signer}'s secret)" if signer else "")
        except WebhookVerificationError as exc:
            verified, why = False, f"signature NOT verified ({exc}); answered 401"
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
        webhook_id = headers.get("webhook-id", "-")
        repeat = " (repeat: same webhook-id as before)" if verified and webhook_id in self._seen else ""
        if verified:
            self._seen.add(webhook_id)
        lines = [f"{method} {path} {time.strftime('%H:%M:%S')}  {why}", f"  webhook-id  {webhook_id}{repeat}"]
        lines += _describe_event(payload, body, verified)
        self._say("\n".join(lines))
        return 204 if verified else 401

    def _verify(self, body: bytes, headers: dict[str, str]) -> tuple[Any, str | None]:
        """The payload and the endpoint whose secret verified it (None: ``secret``'s)."""
        from standardwebhooks import WebhookVerificationError

        try:
            return self._webhook.verify(body, headers), None
        except WebhookVerificationError as failed:
            for attempt in range(2):
                for endpoint_id, webhook in self._endpoints.items():
                    try:
                        return webhook.verify(body, headers), endpoint_id
                    except WebhookVerificationError:
                        continue
                if attempt or not self._look_up():
                    break
            raise failed from None

    def _look_up(self) -> bool:
        """Read the endpoints' secrets again, unless done within ``LOOKUP_EVERY_S``; whether it was."""
        from standardwebhooks import Webhook

        now = self._clock()
        if self._endpoint_secrets is None or (
            self._looked_up_at is not None and now - self._looked_up_at < self.LOOKUP_EVERY_S
        ):
            return False
        self._looked_up_at = now
        found = self._endpoint_secrets()
        if found is None:  # the API could not tell: keep what is known
            return False
        self._endpoints = {endpoint_id: Webhook(s) for endpoint_id, s in found.items()}
        return True


def _describe_event(payload: Any, body: bytes, verified: bool) -> list[str]:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        return [f"  body        {len(body):,} bytes, not a maskgate event"]
    data: dict[str, Any] = payload["data"]
    note = "" if verified else "   (unverified: do not trust)"
    error = data.get("error")
    lines = [
        f"  type        {payload.get('type')}{note}",
        f"  job         {data.get('id')}",
        f"  status      {data.get('status')}",
        f"  error       {error['type'] + ': ' + error['message'] if isinstance(error, dict) else '-'}",
    ]
    if data.get("metadata"):
        lines.append(f"  metadata    {json.dumps(data['metadata'], ensure_ascii=False)}")
    for n, mask in enumerate(data.get("masks") or []):
        size = f" {mask.get('width')}x{mask.get('height')}" if mask.get("width") else ""
        lines.append(f"  mask {n:<6} {mask.get('format')}{size}  {mask.get('url')}")
    return lines


def _listen_secret(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """The secret, where it came from, and the ready file's contents when it came from there."""
    if args.secret:
        return args.secret, "--secret", None
    if os.environ.get("MASKGATE_WEBHOOK_SECRET"):
        return os.environ["MASKGATE_WEBHOOK_SECRET"], "MASKGATE_WEBHOOK_SECRET", None
    ready, path = local_ready(args.ready_file)
    if not ready.get("webhook_secret"):
        raise Stop(2, f"maskgate listen: the ready file {path} has no webhook_secret; pass --secret")
    return str(ready["webhook_secret"]), str(path), ready


def _endpoint_secrets(ready: dict[str, Any]) -> Callable[[], dict[str, str] | None]:
    """The secrets of the local stack's registered endpoints that sign with one (v1), by endpoint id,
    read through its API; None, with one line said, when it cannot list them. An endpoint deleted
    between the list and its secret is left out."""

    def look_up() -> dict[str, str] | None:
        try:
            with MaskgateClient(str(ready["api_url"]), str(ready["api_key"])) as client:
                found = {}
                for endpoint in client.list_endpoints():
                    try:
                        secret = client.endpoint_secret(endpoint["id"])["secret"]
                    except ApiProblem:  # gone meanwhile
                        continue
                    if secret:
                        found[endpoint["id"]] = secret
                return found
        except (ApiProblem, ApiUnreachable, httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            out(f"maskgate listen: could not read the endpoints' secrets ({type(exc).__name__}: {exc})")
            return None

    return look_up


def _listen(args: argparse.Namespace) -> int:
    import uvicorn

    secret, source, ready = _listen_secret(args)
    # the local stack's own secret: its registered endpoints' secrets are looked up from its API too
    listener = Listener(secret, endpoint_secrets=_endpoint_secrets(ready) if ready else None)
    also = " and the registered endpoints' own" if ready else ""

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                port = self.servers[0].sockets[0].getsockname()[1]
                out(
                    f"maskgate listen: http://127.0.0.1:{port}/ (any path), verifying with the webhook "
                    f"secret from {source}{also}; Ctrl-C stops"
                )

    config = uvicorn.Config(
        listener, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="off"
    )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # uvicorn re-raises the signal after a clean shutdown
    try:
        Server(config).run()
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:  # uvicorn exits when it cannot bind
        raise Stop(1, f"maskgate listen: cannot listen on 127.0.0.1:{args.port}") from exc
    out("maskgate listen: stopped")
    return 0


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def add_listen_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``listen`` to the ``maskgate`` subcommands."""
    listen = commands.add_parser(
        "listen", help="receive, verify and print webhooks on 127.0.0.1 until Ctrl-C"
    )
    listen.add_argument(
        "--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0 picks one)"
    )
    listen.add_argument(
        "--secret", help="the whsec_ secret (default: $MASKGATE_WEBHOOK_SECRET, else the ready file's)"
    )
    listen.add_argument(
        "--ready-file", help=f"the local stack's ready file (default: ./{DEFAULT_READY_FILE})"
    )
    listen.set_defaults(run=guarded(_listen))
