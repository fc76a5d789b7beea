"""``maskgate dev`` as a newcomer meets it: it writes ./ready.json (and removes it when it stops), prints a
line per job transition and webhook attempt, names a busy port in one line, and the operator commands
find the stack from the ready file (``maskgate keys``) or say that it is not running."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maskgate_local.cli.main import main
from maskgate_local.stack.servers import free_port
from tests.e2e.conftest import START_TIMEOUT_S, TIMEOUT, Stack, stop
from tests.e2e.test_vertical_slice import BOX, data_uri

pytestmark = pytest.mark.e2e
DEV = [sys.executable, "-m", "maskgate_local.cli.main", "dev"]


def _wait_for(condition: Any, what: str, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout} s")
        time.sleep(0.1)  # polling a condition with a deadline, not waiting blindly


@pytest.fixture
def default_dev(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``maskgate dev`` started in an empty folder with no --ready-file (ports 0: any free)."""
    log = tmp_path / "dev.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603
            [*DEV, "--api-port", "0", "--aws-port", "0", "--wavespeed-port", "0"],
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process, tmp_path
        finally:
            stop(process, signal.SIGTERM, timeout=30)


def test_dev_writes_ready_json_by_default_prints_each_transition_and_removes_it_on_exit(
    default_dev: tuple[subprocess.Popen[bytes], Path],
) -> None:
    process, folder = default_dev
    ready_file, log = folder / "ready.json", folder / "dev.log"
    _wait_for(ready_file.exists, "ready.json")
    ready = json.loads(ready_file.read_text())
    body = {"image": data_uri(), "box_prompts": [BOX], "webhook_url": f"http://127.0.0.1:{free_port()}/hooks"}
    created = httpx.post(
        f"{ready['api_url']}/v1/segmentations",
        json=body,
        headers={"Authorization": f"Bearer {ready['api_key']}"},
        timeout=TIMEOUT,
    )
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]

    # one line per transition, naming the step that made it, and one per webhook attempt
    _wait_for(lambda: "webhook segmentation.succeeded attempt 1" in log.read_text(), "the first attempt", 60)
    lines = [line for line in log.read_text().splitlines() if job_id in line]
    assert any(line.endswith("s)") and f"{job_id}  queued  (api " in line for line in lines), lines
    assert any("queued → submitted after " in line and "(submit " in line for line in lines), lines
    assert any("submitted → succeeded after " in line and "(store " in line for line in lines), lines
    assert any("attempt 1: ConnectError" in line and line.endswith("→ retrying") for line in lines), lines

    stop(process, signal.SIGTERM, timeout=30)
    assert process.returncode == 0
    assert not ready_file.exists()  # removed on exit: no stale file misleads the next command
    assert "ready    ready.json" in log.read_text()


def test_a_busy_port_is_one_line_naming_the_port_and_its_flag(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(  # noqa: S603
            [*DEV, "--aws-port", str(port), "--api-port", "0", "--wavespeed-port", "0"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"maskgate dev: port {port} on 127.0.0.1 is in use by another program; "
        "choose another with --aws-port N (0 picks a free port)"
    ]
    assert not (tmp_path / "ready.json").exists()


def test_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dev", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "(default: 3000)" in shown and "(default: 5000)" in shown and "(default: ready.json)" in shown


def test_a_stale_ready_file_asks_whether_maskgate_dev_is_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = f"http://127.0.0.1:{free_port()}"  # nothing listens: the stack that wrote it has stopped
    (tmp_path / "ready.json").write_text(
        json.dumps(
            {
                "api_url": gone,
                "api_key": "mg_x",
                "aws_endpoint_url": gone,
                "region": "us-east-1",
                "table": "t",
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MASKGATE_API_URL", raising=False)
    monkeypatch.delenv("MASKGATE_API_KEY", raising=False)

    for command in (["jobs"], ["reconcile"], ["keys", "list", "--tenant", "default"]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is 'maskgate dev' running?" in err and gone in err, (command, err)


def test_keys_finds_the_local_stack_from_its_ready_file(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in ("MASKGATE_TABLE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(variable, raising=False)  # nothing but the ready file says where the stack is
    (tmp_path / "ready.json").write_text(json.dumps(stack.ready))
    monkeypatch.chdir(tmp_path)
    tenant = f"t-{uuid.uuid4().hex[:8]}"

    assert main(["keys", "create", "--tenant", tenant]) == 0
    created = capsys.readouterr().out
    key = next(line.split()[2] for line in created.splitlines() if line.startswith("api key"))
    key_id = next(line.split()[2] for line in created.splitlines() if line.startswith("key id"))
    assert stack.api("GET", "/v1/segmentations", key=key).status_code == 200  # the new tenant's key works
    assert main(["keys", "list", "--tenant", tenant]) == 0
    assert key_id in capsys.readouterr().out

    assert main(["keys", "revoke", "--tenant", "someone-else", "--key-id", key_id]) == 2
    assert capsys.readouterr().err == f"maskgate keys: tenant someone-else has no key {key_id}\n"
    assert stack.api("GET", "/v1/segmentations", key=key).status_code == 200  # still works


def test_keys_for_a_deployed_stack_without_a_region_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "MASKGATE_TABLE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "samconfig.toml").write_text('[default.deploy.parameters]\nstack_name = "maskgate-x"\n')

    assert main(["keys", "list", "--tenant", "acme", "--stack"]) == 2
    assert capsys.readouterr().err == (
        "maskgate keys: set AWS_DEFAULT_REGION (or AWS_PROFILE) to the region of stack maskgate-x\n"
    )


def test_submit_refuses_a_data_uri_over_the_body_limit_and_points_to_the_file_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    big = "data:image/png;base64," + "A" * (5 * 1024 * 1024)
    nowhere = ["--api-url", f"http://127.0.0.1:{free_port()}", "--api-key", "mg_x"]  # never contacted

    assert main(["submit", big, "--prompt", "the cat", *nowhere]) == 2
    err = capsys.readouterr().err
    assert err.startswith("payload_too_large: ") and "POST /v1/uploads" in err and err.count("\n") == 1
