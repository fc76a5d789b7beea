"""The README's error-routing table is what the workflow does: derived here from the ASL file and the
error tree (first matching retrier, then first matching catcher, as Step Functions evaluates them)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from maskgate.errors import ERRORS_BY_NAME, ApiError, MaskgateError, Missing, RequestError, Retryable

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachine" / "segmentation.asl.json"
README = ROOT / "README.md"
TASKS = ("Submit", "AwaitSlot", "Poll", "Store", "Fail", "Notify")
# What the Lambda runtime and Step Functions themselves end a Task with: a crash or timeout of the
# invocation, a runtime failure, an AWS call throttled past the SDK's retries, the task's own wait.
RUNTIME_ERRORS = ("Sandbox.Timedout", "Lambda.Unknown", "ThrottlingException", "States.Timeout")


def workflow_errors() -> list[str]:
    """Every error class a Task may raise: the tree less the HTTP-only and intake-only branches. Of
    the Missing branch only JobNotFound can reach a Task (a job deleted under its workflow): no Task
    looks up an upload's object or an API key."""
    skipped = (ApiError, RequestError, Missing)
    ours = [
        name
        for name, cls in ERRORS_BY_NAME.items()
        if cls not in (MaskgateError, Retryable) and (not issubclass(cls, skipped) or name == "JobNotFound")
    ]
    return sorted(ours) + list(RUNTIME_ERRORS)


def _matches(names: list[str], error: str) -> bool:
    if "States.ALL" in names:
        return True
    if "States.TaskFailed" in names and not error.startswith("States."):
        return True
    return error in names


def route(state: dict[str, Any], error: str) -> str:
    """``retry ×N`` and/or ``→ Next`` for one error in one Task state."""
    retried = ""
    for rule in state.get("Retry", []):
        if _matches(rule["ErrorEquals"], error):
            attempts = rule.get("MaxAttempts", 3)
            retried = f"retry ×{attempts}, then " if attempts > 0 else ""
            break
    for rule in state.get("Catch", []):
        if _matches(rule["ErrorEquals"], error):
            return f"{retried}→ {rule['Next']}"
    return f"{retried}execution fails" if retried else "execution fails"


def table() -> str:
    states = json.loads(ASL.read_text())["States"]
    lines = ["| error | " + " | ".join(TASKS) + " |", "|---" * (len(TASKS) + 1) + "|"]
    for error in workflow_errors():
        cells = [route(states[task], error) for task in TASKS]
        lines.append(f"| `{error}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_table() -> str:
    found = re.search(
        r"<!-- error-routing:begin -->\n(.*?)\n<!-- error-routing:end -->", README.read_text(), re.DOTALL
    )
    assert found, "README.md has no error-routing table between its markers"
    return found.group(1).strip()


def test_readme_error_routing_table_is_what_the_workflow_does() -> None:
    expected = table()
    assert readme_table() == expected, "README error-routing table is stale; it should read:\n" + expected


def test_every_retryable_error_is_retried_by_every_task_that_waits_on_wavespeed() -> None:
    states = json.loads(ASL.read_text())["States"]
    retryable = [n for n, c in ERRORS_BY_NAME.items() if issubclass(c, Retryable) and c is not Retryable]
    for task in ("Submit", "Store"):
        for name in retryable:
            assert route(states[task], name).startswith("retry"), (task, name)


def test_no_runtime_crash_ends_a_job_unretried() -> None:
    states = json.loads(ASL.read_text())["States"]
    for task in TASKS:
        for error in ("Sandbox.Timedout", "Lambda.Unknown", "ThrottlingException"):
            assert route(states[task], error).startswith("retry"), (task, error)


def test_only_typed_final_errors_and_a_spent_admission_wait_reach_fail_from_submit() -> None:
    states = json.loads(ASL.read_text())["States"]
    to_fail = {e for e in workflow_errors() if route(states["Submit"], e).endswith("→ Fail")}
    assert to_fail == {
        "UpstreamRejected",
        "UpstreamFailed",
        "AdmissionDeferred",
        "QuotaDeferred",
        "PredictionTimedOut",
    }


def test_a_job_in_line_parks_in_await_slot_and_every_way_out_goes_back_to_submit() -> None:
    states = json.loads(ASL.read_text())["States"]
    assert route(states["Submit"], "AdmissionQueued") == "→ AwaitSlot"
    assert states["AwaitSlot"]["Next"] == "Submit"
    for error in workflow_errors():
        assert route(states["AwaitSlot"], error).endswith("→ Submit"), error
