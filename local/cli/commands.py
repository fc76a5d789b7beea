"""The client commands of ``maskgate``: ``submit``, ``jobs``, ``cancel`` and ``listen``.

They talk to the local stack by default (its ready file gives ``api_url``, ``api_key`` and
``webhook_secret``) and to a deployed stack with ``--api-url`` / ``MASKGATE_API_URL`` and
``--api-key`` / ``MASKGATE_API_KEY``. API errors print as ``type: detail`` plus the problem's
``errors``; the exit status is 2 for a 4xx answer or a usage error and 1 for a 5xx, a network error
or a job that did not succeed. The API key is never printed."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from maskgate_local.cli.client import (
    MAX_IMAGE_BYTES,
    ApiProblem,
    ApiUnreachable,
    Box,
    Job,
    MaskgateClient,
    Point,
    Prompts,
    redact,
    sniff_content_type,
)
from maskgate_local.cli.targets import DEFAULT_READY_FILE, Stop, read_ready, stale_hint

MAX_BODY_BYTES = 5 * 1024 * 1024  # the API's request body limit (MASKGATE_MAX_BODY_BYTES' default)
DEFAULT_WAIT_S = 960.0  # the deployment's default job deadline (900 s) and some slack
FILL_PAGES = 10  # pages read to fill one --limit screen of --status filtered jobs
STATUSES = ("awaiting_upload", "queued", "submitted", "processing", "succeeded", "failed", "canceled")


def _out(text: str) -> None:
    print(text, flush=True)  # noqa: T201 (a command talking to a person)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201


# -- where the API is ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    api_url: str
    api_key: str
    ready_file: Path | None = None  # where the URL came from, when it is the local stack's


def _read_ready(path_arg: str | None) -> tuple[dict[str, Any], Path]:
    return read_ready(
        path_arg,
        prog="maskgate",
        otherwise="name a deployed stack with --api-url and --api-key (or MASKGATE_API_URL and "
        "MASKGATE_API_KEY)",
    )


def _target(args: argparse.Namespace) -> Target:
    url = args.api_url or os.environ.get("MASKGATE_API_URL")
    key = args.api_key or os.environ.get("MASKGATE_API_KEY")
    if url and key:
        return Target(url, key)
    ready, path = _read_ready(args.ready_file)
    if url and url.rstrip("/") != str(ready.get("api_url", "")).rstrip("/"):
        raise Stop(2, f"maskgate: {url} is not the stack of {path}; give its --api-key (or MASKGATE_API_KEY)")
    url, key = url or ready.get("api_url"), key or ready.get("api_key")
    if not url or not key:
        raise Stop(2, f"maskgate: the ready file {path} has no api_url / api_key")
    return Target(str(url), str(key), ready_file=path)


def _client(args: argparse.Namespace) -> MaskgateClient:
    target = _target(args)
    args.ready_file_used = target.ready_file  # for the hint when nothing answers there
    return MaskgateClient(target.api_url, target.api_key)


# -- argument types --------------------------------------------------------------------------------


def _numbers(text: str, shape: str, counts: tuple[int, ...]) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in counts or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected {shape}, not {text!r}")
    return [int(v) if v.is_integer() else v for v in values]


def point(text: str) -> Point:
    """``x,y`` or ``x,y,label`` (label 1 includes, 0 excludes; default 1)."""
    values = _numbers(text, "x,y or x,y,label", (2, 3))
    label = values[2] if len(values) == 3 else 1
    if label not in (0, 1):
        raise argparse.ArgumentTypeError(f"a point's label is 1 (include) or 0 (exclude), not {label}")
    return {"x": values[0], "y": values[1], "label": int(label)}


def box(text: str) -> Box:
    """``x1,y1,x2,y2`` in pixels; x2 and y2 are exclusive."""
    x_min, y_min, x_max, y_max = _numbers(text, "x1,y1,x2,y2", (4,))
    return {"x_min": x_min, "y_min": y_min, "x_max": x_max, "y_max": y_max}


def metadata_item(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"metadata is key=value, not {text!r}")
    return key, value


def _prompts(args: argparse.Namespace) -> Prompts:
    if args.prompt is None and not args.point and not args.box:
        raise Stop(
            2, "maskgate submit: give at least one of --prompt TEXT, --point x,y[,label], --box x1,y1,x2,y2"
        )
    prompts: Prompts = {}
    if args.prompt is not None:
        prompts["prompt"] = args.prompt
    if args.point:
        prompts["point_prompts"] = args.point
    if args.box:
        prompts["box_prompts"] = args.box
    if args.format:
        prompts["output_format"] = args.format
    if args.apply_mask:
        prompts["apply_mask"] = True
    if args.webhook:
        prompts["webhook_url"] = args.webhook
    if args.metadata:
        prompts["metadata"] = dict(args.metadata)
    return prompts


# -- submit ---------------------------------------------------------------------------------------


def _send(client: MaskgateClient, source: str, prompts: Prompts, key: str | None) -> tuple[Job, str]:
    if source.startswith("data:") and len(source) > MAX_BODY_BYTES:
        raise Stop(
            2,
            f"payload_too_large: this data: URI is {len(source):,} bytes, over the API's "
            f"{MAX_BODY_BYTES:,}-byte request body limit; give the image as a file path instead (maskgate "
            "sends files through "
            "POST /v1/uploads, up to 20 MB)",
        )
    if source.startswith(("https://", "http://", "data:")):
        kind = "a data URI" if source.startswith("data:") else redact(source)
        return client.create_job(source, prompts, idempotency_key=key), f"sent {kind}"
    path = Path(source)
    if not path.is_file():
        raise Stop(
            2, f"maskgate submit: no such file {path} (give a local image, an https URL or a data: URI)"
        )
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise Stop(2, f"image_too_large: {path} is {size:,} bytes; images may be at most {MAX_IMAGE_BYTES:,}")
    with path.open("rb") as file:
        if sniff_content_type(file.read(16)) is None:
            raise Stop(2, f"invalid_image: {path} is not a PNG, JPEG, WEBP, GIF, BMP or TIFF image")
    upload = client.upload_file(path, prompts, idempotency_key=key)
    if not upload.uploaded:
        return upload.job, f"idempotent replay: {path.name} was uploaded before, not sent again"
    return upload.job, f"uploaded {path.name} ({size:,} bytes, {upload.content_type})"


def _submit(args: argparse.Namespace) -> int:
    prompts = _prompts(args)
    with _client(args) as client:
        job, how = _send(client, args.image, prompts, args.idempotency_key)
        _out(job["id"])
        if not (args.wait or args.out):
            _err(f"{how}; job {job['status']}")
            return 0
        _err(f"{how}; waiting for {job['id']} (Ctrl-C stops waiting, not the job)")
        started = time.monotonic()
        try:
            final = _wait(client, job["id"], args.timeout)
        except KeyboardInterrupt:
            _err(f"stopped waiting; job {job['id']} goes on (see 'maskgate jobs')")
            return 130
        except TimeoutError as exc:
            raise Stop(1, f"maskgate submit: {exc}") from exc
        return _finish(client, final, args.out, time.monotonic() - started)


def _wait(client: MaskgateClient, job_id: str, timeout: float) -> Job:
    seen: list[str] = []

    with _progress(job_id) as update:

        def on_poll(job: Job, elapsed: float) -> None:
            if not seen or seen[-1] != job["status"]:
                seen.append(job["status"])
                update(job["status"], elapsed, True)
            else:
                update(job["status"], elapsed, False)

        return client.wait(job_id, timeout=timeout, on_poll=on_poll)


def _rich_console() -> Any | None:
    """A rich console on stderr when rich is installed (it is optional; nothing here requires it)."""
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(stderr=True, highlight=False)


@contextmanager
def _progress(job_id: str) -> Iterator[Callable[[str, float, bool], None]]:
    """Status lines with elapsed time on stderr; a rich spinner too when rich is there and stderr is a
    terminal."""
    console = _rich_console()
    if console is None:

        def plain(status: str, elapsed: float, changed: bool) -> None:
            if changed:
                _err(f"  {elapsed:6.1f} s  {status}")

        yield plain
        return
    spinner = console.status(f"{job_id} …") if console.is_terminal else nullcontext()
    with spinner as live:

        def fancy(status: str, elapsed: float, changed: bool) -> None:
            if changed:
                console.print(f"  {elapsed:6.1f} s  {status}", markup=False)
            if live is not None:
                live.update(f"{job_id} {status} · {elapsed:.1f} s")

        yield fancy


def _finish(client: MaskgateClient, job: Job, out: str | None, elapsed: float) -> int:
    if job["status"] != "succeeded":
        error = job.get("error")
        reason = f": {error['type']}: {error['message']}" if error else ""
        _err(f"job {job['id']} {job['status']} after {elapsed:.1f} s{reason}")
        return 1
    _out(f"job {job['id']} succeeded in {elapsed:.1f} s: {len(job['masks'])} mask(s)")
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for mask in job["masks"]:
            data = client.download(mask["url"])  # GET's fresh presigned URL, no API key sent
            ext = "jpg" if mask["format"] == "jpeg" else mask["format"]
            path = folder / f"{job['id']}_mask_{mask['index']}.{ext}"
            path.write_bytes(data)
            size = f"{mask.get('width')}x{mask.get('height')} " if mask.get("width") else ""
            _out(f"  mask {mask['index']}: {size}{mask['format']}, {len(data):,} bytes -> {path}")
    return 0


# -- jobs and cancel ----------------------------------------------------------------------------------


def _when(value: str | None) -> str:
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def _jobs(args: argparse.Namespace) -> int:
    """One screen of ``--limit`` jobs, or with ``--all`` every job. The API filters ``status`` after it
    reads a page, so a filtered page can come back short: without ``--all`` a few more pages fill it.
    ``--key`` keeps the jobs of one S3 upload (its key under uploads/, or the copy the job runs on)."""
    shown, pages = 0, 0
    more: str | None = None
    with _client(args) as client:
        _out(f"{'id':<30} {'status':<15} {'source':<7} {'created (UTC)':<19}  {'error':<24} image")
        for page in client.pages(status=args.status, limit=args.limit, follow=True):
            pages += 1
            mine = [job for job in page["data"] if args.key is None or args.key in _keys(job)]
            for job in mine[: None if args.all or args.key else args.limit - shown]:
                error = job.get("error")
                _out(
                    f"{job['id']:<30} {job['status']:<15} {job['source']:<7} {_when(job['created_at']):<19}  "
                    f"{error['type'] if error else '-':<24} {_image(job)}"
                )
                shown += 1
            more = page["next_cursor"]
            if not args.all and not args.key and (shown >= args.limit or pages >= FILL_PAGES):
                break
    if more and not args.all and not args.key:
        _err(f"{shown} job(s) shown; there are more: add --all")
    elif not shown:
        _err("no jobs" if args.key is None else f"no job for the upload {args.key}")
        return 2 if args.key else 0
    return 0


def _keys(job: dict[str, Any]) -> set[str]:
    image = job.get("image") or {}
    return {str(image[k]) for k in ("upload_key", "key") if image.get(k)}


def _image(job: dict[str, Any]) -> str:
    """Where the job's image came from: the upload's key, else its URL (queries cut), else a data URI."""
    image = job.get("image") or {}
    if image.get("upload_key") or image.get("key"):
        return str(image.get("upload_key") or image["key"])
    if image.get("url"):
        return redact(str(image["url"]))
    return "-"


def _cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.cancel(args.job_id)
    _out(f"{job['id']} {job['status']}")
    return 0


# -- listen -------------------------------------------------------------------------------------------


class Listener:
    """An ASGI app that verifies each delivery with ``standardwebhooks`` and prints it; answers 204
    when the signature verifies, 401 when not."""

    def __init__(self, secret: str, say: Callable[[str], None] = _out) -> None:
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
    ready, path = _read_ready(args.ready_file)
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
                _out(
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
    _out("maskgate listen: stopped")
    return 0


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


# -- wiring -------------------------------------------------------------------------------------------


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command, turning API problems, network errors and ``Stop`` into messages and exit codes."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except Stop as stop:
            _err(stop.message)
            return stop.code
        except ApiProblem as problem:
            _err(f"{problem.type}: {problem.detail}")
            for error in problem.errors:
                _err(f"  - {error['loc']}: {error['msg']}")
            if problem.retry_after is not None:
                _err(f"  retry after {problem.retry_after} s")
            return 2 if 400 <= problem.status < 500 else 1
        except ApiUnreachable as exc:
            ready_file = getattr(args, "ready_file_used", None)
            if ready_file is not None and exc.connect:
                _err(f"maskgate: {stale_hint(ready_file, exc.url)}")
                return 2
            _err(f"network error: {exc}")
            return 1
        except KeyboardInterrupt:
            _err("interrupted")
            return 130

    return guarded


def _api_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    where = options.add_argument_group("which stack (default: the local one, from its ready file)")
    where.add_argument(
        "--api-url", help="the API's base URL (default: $MASKGATE_API_URL, else the ready file)"
    )
    where.add_argument("--api-key", help="the API key (default: $MASKGATE_API_KEY, else the ready file)")
    where.add_argument("--ready-file", help=f"the local stack's ready file (default: ./{DEFAULT_READY_FILE})")
    return options


def add_client_commands(commands: Any) -> None:
    """Add ``submit``, ``jobs``, ``cancel`` and ``listen`` to the ``maskgate`` subcommands."""
    api = _api_options()
    submit = commands.add_parser(
        "submit", parents=[api], help="submit an image (file, https URL or data: URI); print the job id"
    )
    submit.add_argument(
        "image", metavar="IMAGE_OR_URL", help="a local file (≤ 20 MB), an https URL or data: URI"
    )
    prompt = submit.add_argument_group("prompts (at least one)")
    prompt.add_argument("--prompt", help="text prompt, e.g. 'the cat'")
    prompt.add_argument("--point", type=point, action="append", metavar="X,Y[,LABEL]", help="repeatable")
    prompt.add_argument(
        "--box", type=box, action="append", metavar="X1,Y1,X2,Y2", help="repeatable; X2,Y2 exclusive"
    )
    submit.add_argument("--format", choices=("png", "jpeg", "webp"), help="mask format (default png)")
    submit.add_argument("--apply-mask", action="store_true", help="apply the mask to the image (apply_mask)")
    submit.add_argument("--webhook", metavar="URL", help="where to send the signed webhook")
    submit.add_argument("--metadata", type=metadata_item, action="append", metavar="K=V", help="repeatable")
    submit.add_argument("--idempotency-key", metavar="K", help="same key and request within 24 h: same job")
    submit.add_argument("--wait", action="store_true", help="show progress until the job ends")
    submit.add_argument(
        "--out", metavar="DIR", help="save the masks here as <job_id>_mask_<n>.<ext> (implies --wait)"
    )
    submit.add_argument(
        "--timeout", type=float, default=DEFAULT_WAIT_S, help="give up waiting after this many s"
    )
    submit.set_defaults(run=_guarded(_submit))

    jobs = commands.add_parser("jobs", parents=[api], help="list your jobs, newest first")
    jobs.add_argument("--status", choices=STATUSES)
    jobs.add_argument("--limit", type=int, default=20, help="jobs per page, 1-100 (default 20)")
    jobs.add_argument("--all", action="store_true", help="follow next_cursor through every page")
    jobs.add_argument(
        "--key", metavar="KEY", help="only the job of this S3 upload (e.g. uploads/cat.png); reads every page"
    )
    jobs.set_defaults(run=_guarded(_jobs))

    cancel = commands.add_parser("cancel", parents=[api], help="cancel an unfinished job")
    cancel.add_argument("job_id", metavar="JOB_ID")
    cancel.set_defaults(run=_guarded(_cancel))

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
    listen.set_defaults(run=_guarded(_listen))
