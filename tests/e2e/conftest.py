"""End-to-end fixtures: ``maskgate dev`` as a subprocess on free loopback ports, as users run it,
and a webhook receiver that verifies every delivery with the ``standardwebhooks`` library."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from maskgate_local.demo.receiver import Delivery, WebhookReceiver
from maskgate_local.stack.servers import RunningServer, free_port, serve_in_thread

START_TIMEOUT_S = 120.0
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
Crashes = Callable[[dict[str, float]], dict[str, Any]]  # the ``crashes`` fixture: rates in, the table out


@dataclass
class Stack:
    ready: dict[str, Any]
    receiver: WebhookReceiver
    hook_url: str

    def api(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.ready['api_key']}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.ready["api_url"] + path, headers=headers, timeout=TIMEOUT, **kwargs)

    def aws(self, service: str) -> Any:
        return aws_client(self.ready, service)

    def s3(self) -> Any:
        return self.aws("s3")

    def upload(self, key: str, body: bytes, request: dict[str, Any] | None) -> None:
        metadata = {"maskgate": json.dumps(request, ensure_ascii=True)} if request is not None else {}
        self.s3().put_object(Bucket=self.ready["bucket"], Key=key, Body=body, Metadata=metadata)

    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the stack's control server (``control_url`` in the ready file)."""
        return httpx.request(method, self.ready["control_url"] + path, timeout=TIMEOUT, **kwargs)

    def emulator(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = httpx.request(method, self.ready["wavespeed_url"] + path, timeout=TIMEOUT, **kwargs)
        return response.raise_for_status()

    def wait_marker(self, marker: str, timeout: float = 60.0) -> Delivery:
        """The verified webhook of the job whose metadata carries ``{"test": marker}``."""
        return self.receiver.wait_until(
            lambda p: p["data"]["metadata"].get("test") == marker, timeout=timeout, what=marker
        )


def aws_client(ready: dict[str, Any], service: str) -> Any:
    """A boto3 client for the local stack's AWS (moto) endpoint, as its ready file describes it."""
    return boto3.client(
        service,
        endpoint_url=ready["aws_endpoint_url"],
        region_name=ready["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def stop(process: subprocess.Popen[bytes], signum: int, *, timeout: float) -> None:
    """Send ``signum`` and wait; kill the process if it has not ended within ``timeout``."""
    process.send_signal(signum)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_ready(process: subprocess.Popen[bytes], ready_file: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready_file.exists():
            return dict(json.loads(ready_file.read_text()))
        if process.poll() is not None:
            raise RuntimeError(f"maskgate dev exited with {process.returncode} before it was ready")
        time.sleep(0.1)  # polling a condition with a deadline, not waiting blindly
    raise TimeoutError(f"maskgate dev not ready within {START_TIMEOUT_S}s")


@contextmanager
def dev_subprocess(folder: Path, *extra: str) -> Iterator[tuple[dict[str, Any], Path]]:
    """``maskgate dev`` on free loopback ports with ``extra`` arguments: (ready file, log path)."""
    ready_file, log = folder / "ready.json", folder / "dev.log"
    command = [
        sys.executable,
        "-m",
        "maskgate_local.cli.main",
        "dev",
        "--api-port",
        str(free_port()),
        "--aws-port",
        str(free_port()),
        "--wavespeed-port",
        str(free_port()),
        "--ready-file",
        str(ready_file),
        *extra,
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            yield _wait_ready(process, ready_file), log
        finally:
            stop(process, signal.SIGTERM, timeout=30)


@pytest.fixture(scope="session")
def dev_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    with dev_subprocess(tmp_path_factory.mktemp("dev"), "--wavespeed-seed", "7") as started:
        yield started


@pytest.fixture(scope="session")
def stack(dev_process: tuple[dict[str, Any], Path]) -> Iterator[Stack]:
    ready, _ = dev_process
    receiver = WebhookReceiver(secret=ready["webhook_secret"])
    server: RunningServer = serve_in_thread(receiver)
    try:
        yield Stack(ready=ready, receiver=receiver, hook_url=f"{server.url}/hooks")
    finally:
        server.stop()


@pytest.fixture
def faults(stack: Stack) -> Iterator[Any]:
    """Set emulator faults for one test; they are cleared (and the fault RNG reseeded) after it."""

    def apply(**rates: Any) -> None:
        stack.emulator("POST", "/_emulator/reset")
        stack.emulator("PUT", "/_emulator/faults", json=rates)

    yield apply
    stack.emulator("POST", "/_emulator/reset")


def injected(stack: Stack, point: str) -> int:
    """How many crashes the stack has injected at ``point`` so far."""
    return int(stack.control("GET", "/crashes").json()["points"][point]["injected"])


@pytest.fixture
def crashes(stack: Stack) -> Iterator[Crashes]:
    """Set crash rates for one test; every rate and count is reset after it."""

    def apply(rates: dict[str, float]) -> dict[str, Any]:
        stack.control("POST", "/reset").raise_for_status()
        return dict(stack.control("PUT", "/crashes", json=rates).raise_for_status().json())

    yield apply
    stack.control("POST", "/reset").raise_for_status()
