"""``maskgate demo``: one image through both ways in on the local stack, to masks and a verified webhook."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
from PIL import Image

from maskgate_local.demo.receiver import Delivery, WebhookReceiver
from maskgate_local.demo.sample import DISC, PANEL, scene_png
from maskgate_local.stack.dev import DevStack, Ready, StackPorts
from maskgate_local.stack.servers import serve_in_thread

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 (the demo talks to a person)


def _save_masks(delivery: Delivery, out_dir: Path, label: str) -> list[str]:
    lines: list[str] = []
    for mask in (delivery.payload or {})["data"]["masks"]:
        # The webhook's stable link: signed token, 302 to a fresh presigned S3 URL.
        data = httpx.get(mask["url"], follow_redirects=True, timeout=TIMEOUT).raise_for_status().content
        path = out_dir / f"{label}_mask_{len(lines)}.{mask['format'].replace('jpeg', 'jpg')}"
        path.write_bytes(data)
        image = Image.open(io.BytesIO(data)).convert("L")
        histogram = image.histogram()
        foreground = sum(histogram[128:])
        lines.append(
            f"mask {len(lines)}: {image.width}x{image.height} {mask['format']}, "
            f"{foreground:,} foreground px -> {path}"
        )
    return lines


def _report(label: str, delivery: Delivery, started: float, out_dir: Path) -> bool:
    payload = delivery.payload or {}
    data = payload["data"]
    _say(
        f"        job {data['id']} {data['status']} in {delivery.received_at - started:.1f} s; "
        f"webhook {payload['type']} verified (webhook-id {delivery.headers['webhook-id']})"
    )
    if data["status"] != "succeeded":
        _say(f"        error: {json.dumps(data['error'])}")
        return False
    for line in _save_masks(delivery, out_dir, label):
        _say(f"        {line}")
    return True


def _via_s3(ready: Ready, hook: str, image: bytes) -> float:
    s3 = boto3.client(
        "s3",
        endpoint_url=ready.aws_endpoint_url,
        region_name=ready.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 (moto placeholder)
    )
    request = {
        "box_prompts": [{"x_min": PANEL[0], "y_min": PANEL[1], "x_max": PANEL[2] + 1, "y_max": PANEL[3] + 1}],
        "webhook_url": hook,
        "metadata": {"way": "s3"},
    }
    key = f"{ready.upload_prefix}demo/scene é.png"
    _say(f"  [s3]  put s3://{ready.bucket}/{key} with x-amz-meta-maskgate = {json.dumps(request)[:90]}…")
    started = time.time()
    s3.put_object(
        Bucket=ready.bucket,
        Key=key,
        Body=image,
        ContentType="image/png",
        Metadata={"maskgate": json.dumps(request, ensure_ascii=True)},
    )
    return started


def _via_api(ready: Ready, hook: str, image: bytes) -> tuple[str, float]:
    centre = ((DISC[0] + DISC[2]) // 2, (DISC[1] + DISC[3]) // 2)
    body: dict[str, Any] = {
        "image": "data:image/png;base64," + base64.b64encode(image).decode(),
        "point_prompts": [{"x": centre[0], "y": centre[1], "label": 1}],
        "webhook_url": hook,
        "metadata": {"way": "api"},
    }
    started = time.time()
    response = httpx.post(
        f"{ready.api_url}/v1/segmentations",
        json=body,
        timeout=TIMEOUT,
        headers={"Authorization": f"Bearer {ready.api_key}"},
    )
    job = response.raise_for_status().json()
    _say(f"  [api] POST /v1/segmentations (point prompt at {centre}) -> {response.status_code} {job['id']}")
    return str(job["id"]), started


def run_demo(*, out_dir: Path) -> int:
    """Run the demo; 0 when both ways in ended with masks and a verified webhook."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _say("maskgate demo: starting the local stack (moto + in-process Lambdas + emulators)…")
    stack = DevStack(ports=StackPorts.free())
    ready = stack.start()
    receiver = WebhookReceiver(secret=ready.webhook_secret)
    server = serve_in_thread(receiver)
    try:
        _say(f"  api {ready.api_url}   aws {ready.aws_endpoint_url}   wavespeed {ready.wavespeed_url}")
        hook = f"{server.url}/hooks/maskgate"
        image = scene_png()
        (out_dir / "scene.png").write_bytes(image)
        s3_started = _via_s3(ready, hook, image)
        ok = _report(
            "s3",
            receiver.wait_until(lambda p: p["data"]["metadata"].get("way") == "s3", what="the S3 upload"),
            s3_started,
            out_dir,
        )
        job_id, api_started = _via_api(ready, hook, image)
        ok = _report("api", receiver.wait_for(job_id), api_started, out_dir) and ok
        shown = httpx.get(
            f"{ready.api_url}/v1/segmentations/{job_id}",
            timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {ready.api_key}"},
        ).json()
        _say(
            f"  [api] GET /v1/segmentations/{job_id} -> status {shown['status']}, "
            f"{len(shown['masks'])} mask(s), {len(shown['deliveries'])} webhook attempt(s)"
        )
        _say(f"maskgate demo {'passed' if ok else 'FAILED'}: input and masks are in {out_dir}/")
        return 0 if ok else 1
    finally:
        server.stop()
        stack.stop()
