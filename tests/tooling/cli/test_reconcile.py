"""``maskgate reconcile``: its output and the one-line answers to operator mistakes (exit 2)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from maskgate_local.cli.reconcile import add_reconcile_command, summary
from maskgate_local.stack.servers import free_port

COUNTS = {"found": 2, "restarted": 1, "failed": 0, "slots_released": 1, "webhooks_recovered": 0, "errors": 0}
REPAIRS = [
    {"job_id": "seg_A", "kind": "stalled", "action": "restart", "detail": "seg_A-r1"},
    {"job_id": "seg_B", "kind": "slot", "action": "release", "detail": "job succeeded"},
]


def main(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="maskgate")
    add_reconcile_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["reconcile", *argv])
    code: int = args.run(args)
    return code


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    [line] = captured.err.splitlines()
    return line


def test_summary_is_one_line_then_a_line_per_repair() -> None:
    report = {"dry_run": False, "checked": 12, "repairs": REPAIRS, "counts": COUNTS}
    head, *lines = summary(report)
    assert head == (
        "maskgate reconcile: checked 12 jobs, found 2: restarted 1, failed 0, slots released 1, "
        "webhooks recovered 0"
    )
    assert [line.split() for line in lines] == [
        ["restart", "stalled", "seg_A", "seg_A-r1"],
        ["release", "slot", "seg_B", "job", "succeeded"],
    ]


def test_summary_names_a_tenant_events_repair_by_its_webhook_id() -> None:
    repair = {
        "job_id": None,
        "message_id": "msg_ep_1_disabled_2",
        "kind": "webhook",
        "action": "start_unit",
        "detail": "msg_ep_1_disabled_2_ep_3-s1",
    }
    report = {"dry_run": False, "checked": 0, "repairs": [repair], "counts": COUNTS}
    assert summary(report)[1].split() == ["start", "unit", "webhook", "msg_ep_1_disabled_2", repair["detail"]]


def test_summary_of_a_dry_run_says_would_and_repaired_nothing() -> None:
    report = {"dry_run": True, "checked": 3, "repairs": REPAIRS[:1], "counts": COUNTS}
    head, line = summary(report)
    assert head == "maskgate reconcile --dry-run: checked 3 jobs, found 2, repaired nothing"
    assert line.split() == ["would", "restart", "stalled", "seg_A", "seg_A-r1"]


def test_summary_counts_repairs_that_failed() -> None:
    report = {"dry_run": False, "checked": 1, "repairs": [], "counts": {**COUNTS, "errors": 1}}
    assert summary(report)[0].endswith("; 1 could not be repaired (the function's log says why)")


def test_summary_names_webhooks_dead_lettered_only_when_there_were_some() -> None:
    gave_up = {"job_id": "seg_C", "kind": "webhook", "action": "dead_letter", "detail": "msg_C-s: stopped"}
    report = {
        "dry_run": False,
        "checked": 1,
        "repairs": [gave_up],
        "counts": {**COUNTS, "webhooks_dead_lettered": 1},
    }
    head, line = summary(report)
    assert head.endswith("webhooks recovered 0, webhooks dead-lettered 1")
    assert line.split()[:4] == ["dead", "letter", "webhook", "seg_C"]
    assert "dead-lettered" not in summary({**report, "counts": {**COUNTS, "webhooks_dead_lettered": 0}})[0]


def test_no_ready_file_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main() == 2
    assert f"no ready.json in {tmp_path}" in one_line_error(capsys)


def test_a_ready_file_whose_stack_is_down_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ready = tmp_path / "ready.json"
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    ready.write_text(json.dumps({"aws_endpoint_url": endpoint, "region": "us-east-1"}))
    assert main("--ready-file", str(ready)) == 2
    line = one_line_error(capsys)
    assert f"Nothing answers at {endpoint}" in line and "is 'maskgate dev' running?" in line


def test_stack_without_a_name_or_samconfig_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main("--stack") == 2
    assert "samconfig.toml" in one_line_error(capsys)


def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_an_unreachable_stack_named_in_samconfig_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "samconfig.toml").write_text(
        'version = 0.1\n[default.global.parameters]\nstack_name = "mg-prod"\n'
    )
    aws_env(
        monkeypatch,
        tmp_path,
        AWS_DEFAULT_REGION="eu-west-1",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
    )
    assert main("--stack") == 2
    assert "cannot reach stack mg-prod" in one_line_error(capsys)


def test_no_region_for_a_deployed_stack_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_env(monkeypatch, tmp_path)
    assert main("--stack", "mg-prod") == 2
    assert "set AWS_DEFAULT_REGION" in one_line_error(capsys)


def test_a_negative_grace_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main("--grace-seconds", "-1", "--ready-file", str(tmp_path / "r.json")) == 2
    assert "--grace-seconds" in one_line_error(capsys)


def test_the_sweep_request_carries_the_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from maskgate_local.cli import reconcile as reconcile_command

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(reconcile_command, "_local", lambda ready_file: None)
    monkeypatch.setattr(
        reconcile_command,
        "_invoke",
        lambda target, request: (
            sent.append(request) or {"dry_run": True, "checked": 0, "repairs": [], "counts": COUNTS}
        ),
    )
    assert main("--dry-run", "--grace-seconds", "0") == 0
    assert sent == [{"dry_run": True, "grace_seconds": 0}]
