"""The client commands (``maskgate submit | jobs | cancel | listen``) against the local stack."""

from __future__ import annotations

import base64
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from maskgate_local.cli.listen import Listener
from maskgate_local.cli.main import main
from maskgate_local.stack.servers import free_port
from tests.e2e.conftest import Stack, stop
from tests.e2e.test_vertical_slice import BOX, DISC_CENTRE, box_pixels, white
from tests.support.images import unique_scene

pytestmark = pytest.mark.e2e
Run = Callable[..., tuple[int, str, str]]
BOX_ARG = f"{BOX['x_min']},{BOX['y_min']},{BOX['x_max']},{BOX['y_max']}"


@pytest.fixture
def cli(stack: Stack, capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    """Run ``maskgate <command> --api-url … --api-key … <args>`` in-process: (exit code, stdout, stderr)."""

    def run(command: str, *args: str) -> tuple[int, str, str]:
        where = ["--api-url", stack.ready["api_url"], "--api-key", stack.ready["api_key"]]
        code = main([command, *where, *args])
        captured = capsys.readouterr()
        assert stack.ready["api_key"] not in captured.out + captured.err
        return code, captured.out, captured.err

    yield run


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "scène.png"
    path.write_bytes(unique_scene())
    return path


def tag() -> str:
    return uuid.uuid4().hex[:12]


def test_submit_file_with_box_waits_and_saves_exactly_the_box(
    cli: Run, stack: Stack, image_file: Path, tmp_path: Path
) -> None:
    marker = tag()
    code, out, err = cli(
        "submit", str(image_file), "--box", BOX_ARG, "--webhook", stack.hook_url,
        "--metadata", f"test={marker}", "--wait", "--out", str(tmp_path / "masks"),
    )  # fmt: skip
    assert code == 0, err
    job_id = out.splitlines()[0]
    assert job_id.startswith("seg_") and f"job {job_id} succeeded" in out
    assert "uploaded scène.png" in err and "succeeded" in err  # progress lines
    mask = tmp_path / "masks" / f"{job_id}_mask_0.png"
    assert white(Image.open(mask)) == box_pixels(BOX)
    shown = stack.api("GET", f"/v1/segmentations/{job_id}").json()
    assert shown["source"] == "upload" and shown["status"] == "succeeded"  # went through /v1/uploads
    assert stack.wait_marker(marker).payload["data"]["id"] == job_id


def test_submit_data_uri_with_a_point_saves_a_jpeg_of_the_disc(cli: Run, tmp_path: Path) -> None:
    data_uri = "data:image/png;base64," + base64.b64encode(unique_scene()).decode()
    point = f"{DISC_CENTRE['x']},{DISC_CENTRE['y']},1"
    code, out, err = cli("submit", data_uri, "--point", point, "--format", "jpeg", "--out", str(tmp_path))
    assert code == 0, err
    job_id = out.splitlines()[0]
    grey = Image.open(tmp_path / f"{job_id}_mask_0.jpg").convert("L")
    assert grey.getpixel((DISC_CENTRE["x"], DISC_CENTRE["y"])) > 200 and grey.getpixel((240, 120)) < 50


def test_submit_text_prompt_jobs_lists_it_replay_is_the_same_job_cancel_after_the_end_is_409(
    cli: Run, image_file: Path
) -> None:
    code, out, err = cli("submit", str(image_file), "--prompt", "the shapes", "--idempotency-key", tag())
    assert code == 0, err
    [job_id] = out.split()  # without --wait: only the id on stdout
    assert err.strip().endswith("; job starts when the upload is seen")  # not "awaiting_upload": it is past
    code, out, _ = cli("jobs", "--limit", "2", "--all")
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert job_id in rows and len(rows) > 2  # followed next_cursor past the first page
    key = tag()
    code, out, err = cli("submit", str(image_file), "--box", BOX_ARG, "--idempotency-key", key, "--wait")
    assert code == 0, err
    finished = out.splitlines()[0]
    code, out, err = cli("submit", str(image_file), "--box", BOX_ARG, "--idempotency-key", key)
    assert (code, out.strip()) == (0, finished) and "not sent again" in err  # a replay uploads nothing
    code, out, err = cli("cancel", finished)
    assert code == 2 and out == ""
    assert err.startswith("conflict: ") and "already finished" in err


def test_api_problems_and_network_errors_set_the_exit_code(cli: Run, stack: Stack) -> None:
    code, _, err = cli("submit", "data:image/png;base64,AAAA", "--prompt", "x")
    assert code == 2 and err.startswith("invalid_image: ")
    code, _, err = cli("submit", "https://example.com/a.png", "--box", "5,5,1,1")
    assert code == 2 and err.startswith("invalid_request: ") and "  - box_prompts.0" in err
    code, _, err = cli("cancel", "seg_00000000000000000000000000")
    assert code == 2 and err.startswith("not_found: ")
    code = main(["jobs", "--api-url", f"http://127.0.0.1:{free_port()}", "--api-key", "k"])
    assert code == 1


def test_the_ready_file_is_the_default_target(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MASKGATE_API_URL", raising=False)
    monkeypatch.delenv("MASKGATE_API_KEY", raising=False)
    assert main(["jobs"]) == 2
    assert "Start the local stack with 'maskgate dev' (it writes ./ready.json)" in capsys.readouterr().err
    (tmp_path / "ready.json").write_text(json.dumps(stack.ready))
    assert main(["jobs", "--limit", "1"]) == 0
    assert capsys.readouterr().out.startswith("id ")


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


def _read_until(lines: queue.Queue[str], needle: str, seen: list[str], timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} not printed within {timeout}s: {''.join(seen)}")


def test_listen_prints_and_verifies_each_webhook(
    cli: Run, stack: Stack, image_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ready.json").write_text(json.dumps(stack.ready))  # the secret comes from the ready file
    command = [sys.executable, "-u", "-m", "maskgate_local.cli.main", "listen", "--port", "0"]
    command += ["--ready-file", str(tmp_path / "ready.json")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # noqa: S603
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        ready_line = _read_until(lines, "maskgate listen: http://127.0.0.1:", seen)
        url = ready_line.split()[2]
        assert stack.ready["webhook_secret"] not in ready_line
        code, out, err = cli("submit", str(image_file), "--box", BOX_ARG, "--webhook", url)
        assert code == 0, err
        job_id = out.strip()
        _read_until(lines, "signature verified", seen)
        _read_until(lines, "mask 0", seen)
        printed = "".join(seen)
        assert f"job         {job_id}" in printed and "type        segmentation.succeeded" in printed
        assert "status      succeeded" in printed
        assert f"webhook-id  msg_{job_id.removeprefix('seg_')}_succeeded" in printed
        assert f"/v1/segmentations/{job_id}/masks/0?token=" in printed
        forged = httpx.post(
            url,
            content=b'{"type": "segmentation.succeeded", "data": {"id": "seg_forged"}}',
            headers={"webhook-id": "msg_forged", "webhook-timestamp": str(int(time.time())),
                     "webhook-signature": "v1,Zm9yZ2Vk"},
            timeout=10,
        )  # fmt: skip
        assert forged.status_code == 401
        _read_until(lines, "signature NOT verified", seen)
        # a registered endpoint signs with its own secret: the listener looks it up from the stack
        # (the forgery above made it look once; the next look is allowed LOOKUP_EVERY_S later)
        time.sleep(Listener.LOOKUP_EVERY_S)
        where = ["--api-url", stack.ready["api_url"], "--api-key", stack.ready["api_key"]]
        assert main(["endpoints", "create", *where, url, "--event", "segmentation.succeeded"]) == 0
        endpoint_id = re.search(r"ep_[0-9A-Za-z]+", capsys.readouterr().out).group(0)  # type: ignore[union-attr]
        try:
            code, out, err = cli("submit", str(image_file), "--box", BOX_ARG)
            assert code == 0, err
            _read_until(lines, f"signature verified (endpoint {endpoint_id}'s secret)", seen)
        finally:
            assert main(["endpoints", "delete", *where, endpoint_id]) == 0
    finally:
        stop(process, signal.SIGINT, timeout=10)
        reader.join(timeout=10)  # the pipe ends with the process: every line is queued
        assert process.stdout is not None
        process.stdout.close()
    assert process.returncode == 0
    _read_until(lines, "maskgate listen: stopped", seen, timeout=5)


def test_jobs_shows_source_and_image_and_key_finds_the_job_of_an_s3_upload(cli: Run, stack: Stack) -> None:
    marker = tag()
    key = f"uploads/{marker} photo.png"
    request = {"box_prompts": [BOX], "webhook_url": stack.hook_url, "metadata": {"test": marker}}
    stack.upload(key, unique_scene(), request)
    job_id = stack.wait_marker(marker).payload["data"]["id"]

    code, out, err = cli("jobs", "--key", key)

    assert code == 0, err
    [header, row] = out.splitlines()
    assert header.split()[:4] == ["id", "status", "source", "created"] and header.endswith("image")
    assert row.startswith(f"{job_id} ") and " succeeded " in row and " upload " in row and row.endswith(key)
    shown = stack.api("GET", f"/v1/segmentations/{job_id}").json()["image"]
    assert shown["upload_key"] == key and shown["key"].startswith(f"inputs/{job_id}/")  # runs on the copy
    code, out, err = cli("jobs", "--key", f"uploads/{marker}-never.png")
    assert code == 2 and err.strip() == f"no job for the upload uploads/{marker}-never.png"
    assert out == ""  # no table header over nothing
