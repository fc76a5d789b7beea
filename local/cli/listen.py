"""``maskgate listen``: receive webhooks on 127.0.0.1, verify each with ``standardwebhooks`` and print it."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from maskgate_local.cli.api import guarded, local_ready, out
from maskgate_local.cli.targets import DEFAULT_READY_FILE, Stop


class Listener:
    """An ASGI app that verifies each delivery with ``standardwebhooks`` and prints it; answers 204
    when the signature verifies, 401 when not."""

    def __init__(self, secret: str, say: Callable[[str], None] = out) -> None:
        from standardwebhooks import Webhook

        self._webhook = Webhook(secret)
        self._say = say
        self._seen: set[str] = set()

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
        status = self.receive(scope["method"], scope["path"], headers, body)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def receive(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        from standardwebhooks import WebhookVerificationError

        try:
            payload = self._webhook.verify(body, headers)
            verified, why = True, "signature verified"
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


def _listen_secret(args: argparse.Namespace) -> tuple[str, str]:
    if args.secret:
        return args.secret, "--secret"
    if os.environ.get("MASKGATE_WEBHOOK_SECRET"):
        return os.environ["MASKGATE_WEBHOOK_SECRET"], "MASKGATE_WEBHOOK_SECRET"
    ready, path = local_ready(args.ready_file)
    if not ready.get("webhook_secret"):
        raise Stop(2, f"maskgate listen: the ready file {path} has no webhook_secret; pass --secret")
    return str(ready["webhook_secret"]), str(path)


def _listen(args: argparse.Namespace) -> int:
    import uvicorn

    secret, source = _listen_secret(args)
    listener = Listener(secret)

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                port = self.servers[0].sockets[0].getsockname()[1]
                out(
                    f"maskgate listen: http://127.0.0.1:{port}/ (any path), verifying with the webhook "
                    f"secret from {source}; Ctrl-C stops"
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
