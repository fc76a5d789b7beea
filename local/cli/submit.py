"""``maskgate submit``: an image (a file, an https URL or a data: URI) and its prompts to a job; with
``--wait`` or ``--out``, its progress until it ends and its masks."""

from __future__ import annotations

import argparse
import base64
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from maskgate_local.cli.api import api_client, api_options, err, guarded, out
from maskgate_local.cli.client import (
    MAX_IMAGE_BYTES,
    Box,
    Job,
    MaskgateClient,
    Point,
    Prompts,
    redact,
    sniff_content_type,
)
from maskgate_local.cli.targets import Stop

MAX_BODY_BYTES = 5 * 1024 * 1024  # the API's request body limit (MASKGATE_MAX_BODY_BYTES' default)
DEFAULT_WAIT_S = 960.0  # the deployment's default job deadline (900 s) and some slack


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
    if args.outputs:
        prompts["outputs"] = [name.strip() for name in args.outputs.split(",") if name.strip()]
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


def _dry_run(client: MaskgateClient, source: str, prompts: Prompts) -> int:
    """Check the request and print its price and what it would meet; nothing is created or spent."""
    image = source
    if not source.startswith(("https://", "http://", "data:")):
        path = Path(source)
        if not path.is_file():
            raise Stop(2, f"maskgate submit: no such file {path}")
        data = path.read_bytes()
        kind = sniff_content_type(data[:16])
        if kind is None:
            raise Stop(2, f"invalid_image: {path} is not a PNG, JPEG, WEBP, GIF, BMP or TIFF image")
        image = f"data:{kind};base64," + base64.b64encode(data).decode()
        if len(image) > MAX_BODY_BYTES:
            raise Stop(2, f"maskgate submit: {path} is too large for a dry run's request body (5 MB)")
    answer = client.dry_run(image, prompts)
    remaining = answer.get("remaining_usd")
    out(f"price          ${answer['price_usd']} ({answer['model']})")
    out(f"would run      {'yes' if answer['would_run'] else 'no'}")
    if not answer["would_run"]:
        retry = f" (retry after {answer['retry_after']} s)" if answer.get("retry_after") else ""
        out(f"refused by     {answer['refused_by']}: {answer['detail']}{retry}")
    cap = "none" if answer.get("cap_usd") is None else f"${answer['cap_usd']}"
    out(f"spend cap      {cap}; this month ${answer['month_spend_usd']} spent and reserved")
    if remaining is not None:
        out(f"remaining      ${remaining}")
    out(f"cache          {answer.get('cache', 'unknown')}")
    return 0 if answer["would_run"] else 2


def _submit(args: argparse.Namespace) -> int:
    prompts = _prompts(args)
    with api_client(args) as client:
        if args.dry_run:
            return _dry_run(client, args.image, prompts)
        job, how = _send(client, args.image, prompts, args.idempotency_key)
        out(job["id"])
        if not (args.wait or args.out):
            # an upload's job starts once the stack sees the object: "awaiting_upload" is already past
            status = "starts when the upload is seen" if job["status"] == "awaiting_upload" else job["status"]
            err(f"{how}; job {status}")
            return 0
        err(f"{how}; waiting for {job['id']} (Ctrl-C stops waiting, not the job)")
        started = time.monotonic()
        try:
            final = _wait(client, job["id"], args.timeout)
        except KeyboardInterrupt:
            err(f"stopped waiting; job {job['id']} goes on (see 'maskgate jobs')")
            return 130
        except TimeoutError as exc:
            raise Stop(1, f"maskgate submit: {exc}") from exc
        return _finish(client, final, args.out, time.monotonic() - started)


def _wait(client: MaskgateClient, job_id: str, timeout: float) -> Job:
    seen: list[str] = []

    with _progress(job_id) as update:

        def on_poll(job: Job, elapsed: float) -> None:
            label = progress_label(job)
            if not seen or seen[-1] != label:
                seen.append(label)
                update(label, elapsed, True)
            else:
                update(label, elapsed, False)

        return client.wait(job_id, timeout=timeout, on_poll=on_poll)


def progress_label(job: Job) -> str:
    """The job's status; while it waits for a WaveSpeed slot, its place in line and estimated start."""
    position = job.get("queue_position")
    if job["status"] != "queued" or position is None:
        return str(job["status"])
    start = job.get("estimated_start")
    when = ""
    if start:
        at = datetime.fromisoformat(str(start)).astimezone(UTC)
        when = f", estimated start {at:%H:%M:%S} UTC"
    return f"queued, {position} in line{when}"


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
                err(f"  {elapsed:6.1f} s  {status}")

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


def _finish(client: MaskgateClient, job: Job, out_dir: str | None, elapsed: float) -> int:
    if job["status"] != "succeeded":
        error = job.get("error")
        reason = f": {error['type']}: {error['message']}" if error else ""
        err(f"job {job['id']} {job['status']} after {elapsed:.1f} s{reason}")
        return 1
    out(f"job {job['id']} succeeded in {elapsed:.1f} s: {len(job['masks'])} mask(s)")
    if out_dir:
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for mask in job["masks"]:
            data = client.download(mask["url"])  # GET's fresh presigned URL, no API key sent
            ext = "jpg" if mask["format"] == "jpeg" else mask["format"]
            path = folder / f"{job['id']}_mask_{mask['index']}.{ext}"
            path.write_bytes(data)
            size = f"{mask.get('width')}x{mask.get('height')} " if mask.get("width") else ""
            out(f"  mask {mask['index']}: {size}{mask['format']}, {len(data):,} bytes -> {path}")
        save_results(client, job, folder)
    return 0


def save_results(client: MaskgateClient, job: Job, folder: Path) -> None:
    """Write the job's instances.json and COCO file beside its masks, where it has them."""
    results = job.get("results")
    if not results:
        return
    if results["unavailable"]:
        err(f"  instances unavailable: {results['unavailable']['message']}")
    files = (
        ("instances", results["instances_url"], "instances.json"),
        ("coco", results["coco_url"], "annotations.coco.json"),
    )
    for label, url, name in files:
        if url:
            path = folder / f"{job['id']}_{name}"
            path.write_bytes(client.download(url))
            count = results["instance_count"]
            found = "nothing found" if count == 0 else f"{count} instance(s)"
            out(f"  {label}: {found} -> {path}")


def add_submit_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``submit`` to the ``maskgate`` subcommands."""
    submit = commands.add_parser(
        "submit",
        parents=[api_options()],
        help="submit an image (file, https URL or data: URI); print the job id",
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
    submit.add_argument(
        "--outputs",
        metavar="LIST",
        help="what the job keeps, comma-separated from masks,instances,coco (default: all three)",
    )
    submit.add_argument("--webhook", metavar="URL", help="where to send the signed webhook")
    submit.add_argument("--metadata", type=metadata_item, action="append", metavar="K=V", help="repeatable")
    submit.add_argument("--idempotency-key", metavar="K", help="same key and request within 24 h: same job")
    submit.add_argument(
        "--dry-run",
        action="store_true",
        help="check the request and show its price and whether the quotas and spend cap would let it "
        "through now; nothing is created or spent (exit 2 if it would be refused)",
    )
    submit.add_argument("--wait", action="store_true", help="show progress until the job ends")
    submit.add_argument(
        "--out",
        metavar="DIR",
        help="save the masks here as <job_id>_mask_<n>.<ext>, with <job_id>_instances.json and "
        "<job_id>_annotations.coco.json (implies --wait)",
    )
    submit.add_argument(
        "--timeout", type=float, default=DEFAULT_WAIT_S, help="give up waiting after this many s"
    )
    submit.set_defaults(run=guarded(_submit))
