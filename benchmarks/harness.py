"""One local stack for a whole benchmark run: ``DevStack`` on free ports, a caller webhook receiver that
verifies with ``standardwebhooks``, and a tap on the emulator's callback sending."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx

from maskgate_local.demo.receiver import WebhookReceiver
from maskgate_local.demo.sample import PANEL, scene_png
from maskgate_local.emulator import app as wavespeed_emulator
from maskgate_local.emulator import edges as wavespeed_io
from maskgate_local.emulator.app import WaveSpeedEmulator
from maskgate_local.stack.dev import DevStack, Ready, StackPorts
from maskgate_local.stack.servers import RunningServer, serve_in_thread

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
BOX = {"x_min": PANEL[0], "y_min": PANEL[1], "x_max": PANEL[2] + 1, "y_max": PANEL[3] + 1}


def tagged_png(png: bytes, tag: str) -> bytes:
    """The same PNG with a text chunk holding ``tag`` after its header: the same pixels, other bytes
    (so another result-cache key)."""
    data = b"maskgate\x00" + tag.encode()
    chunk = len(data).to_bytes(4, "big") + b"tEXt" + data + zlib.crc32(b"tEXt" + data).to_bytes(4, "big")
    end_of_header = 8 + 25  # the signature, then IHDR: length, type, 13 bytes, CRC
    return png[:end_of_header] + chunk + png[end_of_header:]


@dataclass
class CallbackTap:
    """Wall-clock time at which the emulator starts POSTing each callback, by maskgate job id.

    The emulator module calls ``post_callback(http, url, ...)`` right after it marks a prediction
    completed; the tap notes ``time.time()`` and then calls the real function, so "sent" is the moment
    the signed request leaves for maskgate's ``/v1/callbacks/wavespeed?job=<id>``.
    """

    sent: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, original: Callable[..., bool]) -> Callable[..., bool]:
        def post_callback(http: httpx.Client, url: str, **kwargs: Any) -> bool:
            now = time.time()
            job = parse_qs(urlsplit(url).query).get("job", [""])[0]
            with self._lock:
                self.sent.setdefault(job, now)
            return original(http, url, **kwargs)

        return post_callback


@dataclass
class Bench:
    stack: DevStack
    ready: Ready
    receiver: WebhookReceiver
    server: RunningServer
    tap: CallbackTap
    http: httpx.Client
    outputs: list[str] | None = None  # the request's outputs; None: not sent (the default, all three)

    @property
    def emulator(self) -> WaveSpeedEmulator:
        if self.stack.emulator is None:
            raise RuntimeError("the local stack is not running")
        return self.stack.emulator

    @property
    def hook_url(self) -> str:
        return f"{self.server.url}/hooks/bench"

    def faults(self, **rates: Any) -> None:
        """Reset the emulator (predictions, counters, faults) and set these faults, as the e2e tests do."""
        self.http.post(f"{self.ready.wavespeed_url}/_emulator/reset").raise_for_status()
        self.http.put(f"{self.ready.wavespeed_url}/_emulator/faults", json=rates).raise_for_status()

    def submit(
        self, metadata: dict[str, str], *, image: bytes | None = None, **fields: Any
    ) -> tuple[str, float, float]:
        """POST one box-prompt job; returns (job id, POST sent at, 202 received at), wall clock.

        Its image is the sample scene made unique to the job (``tagged_png``), so every job is a
        result-cache miss that pays WaveSpeed, as distinct images do, unless ``image`` is given."""
        png = image if image is not None else tagged_png(scene_png(), json.dumps(metadata, sort_keys=True))
        body = json.dumps(
            {
                "image": "data:image/png;base64," + base64.b64encode(png).decode(),
                "box_prompts": [BOX],
                "webhook_url": self.hook_url,
                "metadata": metadata,
                **({} if self.outputs is None else {"outputs": self.outputs}),
                **fields,
            }
        ).encode()
        headers = {"Authorization": f"Bearer {self.ready.api_key}", "content-type": "application/json"}
        posted = time.time()
        response = self.http.post(f"{self.ready.api_url}/v1/segmentations", content=body, headers=headers)
        accepted = time.time()
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/segmentations -> {response.status_code}: {response.text[:300]}")
        return str(response.json()["id"]), posted, accepted

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(
            f"{self.ready.api_url}/v1/segmentations/{job_id}",
            headers={"Authorization": f"Bearer {self.ready.api_key}"},
        )
        return dict(response.raise_for_status().json())

    def prediction_completed_at(self, prediction_id: str) -> tuple[float, int] | None:
        """(completed at, inference ms) from the emulator's own record, read in-process.

        The record has no completion time, but it has ``created_at`` (wall clock, ms) and
        ``timings.inference`` (ms from the worker's start to completion, truncated), so
        created_at + inference is at most the true completion time: intervals measured from it can only
        be over-stated (by the worker thread's start-up, about a millisecond).
        """
        data = self.emulator.prediction(prediction_id)
        if data is None or data["status"] != "completed":
            return None
        created = datetime.fromisoformat(data["created_at"].replace("Z", "+00:00")).timestamp()
        inference_ms = int(data["timings"]["inference"])
        return created + inference_ms / 1000.0, inference_ms

    def sfn(self) -> Any:
        return boto3.client(
            "stepfunctions",
            endpoint_url=self.ready.aws_endpoint_url,
            region_name=self.ready.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def execution_arn(self, job_id: str) -> str:
        return f"{self.ready.state_machine_arn.replace(':stateMachine:', ':execution:')}:{job_id}"


@contextlib.contextmanager
def running_bench(parameters: dict[str, str] | None = None) -> Iterator[Bench]:
    """Start ONE in-process local stack (template ``parameters`` over the local ones) and a caller
    receiver; stop both (and untap) at the end."""
    tap = CallbackTap()
    with contextlib.ExitStack() as cleanup:
        # the emulator calls post_callback by its own module's name: patched there, wrapping the original
        cleanup.enter_context(
            mock.patch.object(wavespeed_emulator, "post_callback", tap.wrap(wavespeed_io.post_callback))
        )
        stack = DevStack(ports=StackPorts.free(), parameters=dict(parameters or {}))
        ready = stack.start()
        cleanup.callback(stack.stop)
        receiver = WebhookReceiver(secret=ready.webhook_secret)
        server = serve_in_thread(receiver)
        cleanup.callback(server.stop)
        http = cleanup.enter_context(httpx.Client(timeout=TIMEOUT))
        yield Bench(stack, ready, receiver, server, tap, http)


ROOT = Path(__file__).resolve().parents[1]


def run_part(module: str, args: list[str]) -> dict[str, Any]:
    """``python -m <module> <args> --json <file>`` in a fresh child (an in-process stack sets
    os.environ and patches moto, and this process may have run another stack already): its report."""
    with tempfile.TemporaryDirectory(prefix="maskgate-part-") as tmp:
        out = Path(tmp) / "report.json"
        done = subprocess.run(
            [sys.executable, "-m", module, *args, "--json", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"{module} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        report: dict[str, Any] = json.loads(out.read_text())
    return report
