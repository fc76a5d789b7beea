"""Every transient error a workflow Task can raise is in that Task's ``Retry``, and every error a Task's
``Retry`` names can be raised by it.

Three checks hold each other honest:
- each (Task, error) in ``RAISED`` is produced by running the Task's handler on moto under one fault;
- the errors ``RAISED`` lists per Task are exactly the ones its ``Retry`` names (attempts > 0);
- every ``Retryable`` class constructed anywhere the Task's step module reaches by import is either in
  ``RAISED`` for that Task or in ``NEVER_ESCAPES`` with the reason it cannot leave that step, so a new
  transient error (or a new call into a module that raises one) fails here until it is routed.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from maskgate import clients, errors
from maskgate.contracts.job import ImageLocation, Job
from tests.integration.conftest import Aws
from tests.integration.seeds import queued_job, submit_event, submitted
from tests.support.artefacts import LambdaContext, event, load_handler
from tests.support.fakes import FakeWaveSpeed

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "shared"
WORKFLOWS = sorted((ROOT / "statemachine").glob("*.asl.json"))
RETRYABLE = {name for name, cls in errors.ERRORS_BY_NAME.items() if issubclass(cls, errors.Retryable)} - {
    "Retryable"
}

Scenario = Callable[[Aws, FakeWaveSpeed, pytest.MonkeyPatch], dict[str, Any]]


def _poll_event(job: Job) -> dict[str, Any]:
    return {**event("poll"), "job_id": job.id, "task_token": "poll-token", "deadline_at": 4102444800}


def _store_event(job: Job, prediction_id: str) -> dict[str, Any]:
    return {**event("store"), "job_id": job.id, "prediction_id": prediction_id}


def _submit_refused(code: int) -> Scenario:
    def scenario(aws: Aws, wavespeed: FakeWaveSpeed, _: pytest.MonkeyPatch) -> dict[str, Any]:
        wavespeed.submit_status = code
        return submit_event(queued_job(aws))

    return scenario


def _submit_over_the_minute(
    aws: Aws, wavespeed: FakeWaveSpeed, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    monkeypatch.setenv("WAVESPEED_SUBMITS_PER_MINUTE", "1")
    clients.reset()
    load_handler("submit").handler(submit_event(queued_job(aws)), LambdaContext())  # this minute's one
    return submit_event(queued_job(aws))


def _submit_over_the_tenants_quota(
    aws: Aws, wavespeed: FakeWaveSpeed, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    gate = clients.gate()
    gate.limits.set(aws.tenant, {"max_jobs_in_flight": 1})
    holder = queued_job(aws)
    gate.quotas.take(aws.tenant, holder.id, gate.limits.get(aws.tenant))  # the tenant's one place
    return submit_event(queued_job(aws, source="upload"))  # an upload's job takes its quota at Submit


def _submit_with_a_twin_in_flight(
    aws: Aws, wavespeed: FakeWaveSpeed, _: pytest.MonkeyPatch
) -> dict[str, Any]:
    """An identical request on the same image bytes is already submitted: the result cache waits."""
    image = ImageLocation(bucket=aws.bucket, key="inputs/twins/image.png", sha256="ab" * 32)
    load_handler("submit").handler(submit_event(queued_job(aws, image=image)), LambdaContext())
    return submit_event(queued_job(aws, image=image))


def _poll_refused(code: int) -> Scenario:
    def scenario(aws: Aws, wavespeed: FakeWaveSpeed, _: pytest.MonkeyPatch) -> dict[str, Any]:
        job, _pid = submitted(aws, wavespeed, "processing")
        wavespeed.read_status = code
        return _poll_event(job)

    return scenario


def _store_refused(code: int) -> Scenario:
    def scenario(aws: Aws, wavespeed: FakeWaveSpeed, _: pytest.MonkeyPatch) -> dict[str, Any]:
        job, pid = submitted(aws, wavespeed, "completed")
        wavespeed.read_status = code
        return _store_event(job, pid)

    return scenario


def _store_output_unavailable(aws: Aws, wavespeed: FakeWaveSpeed, _: pytest.MonkeyPatch) -> dict[str, Any]:
    job, pid = submitted(aws, wavespeed, "completed")
    wavespeed.output_status = 503
    return _store_event(job, pid)


def _store_before_the_prediction_finished(
    aws: Aws, wavespeed: FakeWaveSpeed, _: pytest.MonkeyPatch
) -> dict[str, Any]:
    job, pid = submitted(aws, wavespeed, "processing")  # the callback said completed; the read lags
    return _store_event(job, pid)


# (Task, error) → the fault that makes the Task's handler raise it.
RAISED: dict[tuple[str, str], list[Scenario]] = {
    ("Submit", "UpstreamRateLimited"): [_submit_refused(429)],
    ("Submit", "UpstreamUnavailable"): [_submit_refused(503)],
    ("Submit", "AdmissionDeferred"): [_submit_over_the_minute],
    ("Submit", "QuotaDeferred"): [_submit_over_the_tenants_quota],
    ("Submit", "ResultPending"): [_submit_with_a_twin_in_flight],
    ("Poll", "UpstreamRateLimited"): [_poll_refused(429)],
    ("Poll", "UpstreamUnavailable"): [_poll_refused(503)],
    ("Store", "UpstreamRateLimited"): [_store_refused(429)],
    ("Store", "UpstreamUnavailable"): [_store_refused(503), _store_output_unavailable],
    ("Store", "PredictionNotReady"): [_store_before_the_prediction_finished],
}

# (Task, error) a module the step imports can construct, and why it never leaves the step.
NEVER_ESCAPES: dict[tuple[str, str], str] = {
    ("Store", "AdmissionDeferred"): "Store only gives its slot back (Admission.release), which never defers",
}


def _tasks() -> dict[str, dict[str, Any]]:
    """Every Task state of every workflow, by name."""
    found: dict[str, dict[str, Any]] = {}

    def walk(states: dict[str, Any]) -> None:
        for name, state in states.items():
            if state["Type"] == "Task":
                found[name] = state
            for branch in state.get("Branches", []):
                walk(branch["States"])
            for key in ("Iterator", "ItemProcessor"):
                if key in state:
                    walk(state[key]["States"])

    for path in WORKFLOWS:
        walk(json.loads(path.read_text())["States"])
    return found


def _named_retriers(state: dict[str, Any]) -> set[str]:
    """The errors a Task's Retry names one by one with at least one attempt (a last ``States.ALL``
    retrier, for crashes and throttles, names nothing)."""
    names: set[str] = set()
    for rule in state.get("Retry", []):
        if rule.get("MaxAttempts", 3) > 0 and "States.ALL" not in rule["ErrorEquals"]:
            names.update(rule["ErrorEquals"])
    return names


def _module_file(module: str) -> Path | None:
    base = LAYER / module.replace(".", "/")
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def _reachable_modules(module: str) -> set[str]:
    """The layer modules ``module`` imports, transitively (imports under TYPE_CHECKING included)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("maskgate"):
                todo.extend(f"{node.module}.{alias.name}" for alias in node.names)
                todo.append(node.module)
            elif isinstance(node, ast.Import):
                todo.extend(a.name for a in node.names if a.name.startswith("maskgate"))
    return seen


def _constructed_retryables(module: str) -> set[str]:
    """The Retryable classes called (raised or returned to be raised) in one module."""
    path = _module_file(module)
    assert path is not None
    return {
        node.func.id
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in RETRYABLE
    }


def _could_raise(task: str) -> set[str]:
    modules = _reachable_modules(f"maskgate.steps.{task.lower()}")
    return set().union(*(_constructed_retryables(m) for m in modules))


TASKS = _tasks()


def test_the_workflows_have_the_tasks_this_contract_covers() -> None:
    assert {"Submit", "Poll", "Store", "Fail", "Notify", "Deliver", "Expire"} <= set(TASKS)
    assert {task for task, _ in RAISED} <= set(TASKS)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_a_task_retries_exactly_the_transient_errors_it_raises(task: str) -> None:
    named = _named_retriers(TASKS[task])
    raised = {error for t, error in RAISED if t == task}
    assert named & RETRYABLE == raised, f"{task}'s Retry names {sorted(named & RETRYABLE)}"
    assert named <= RETRYABLE, f"{task} retries a final error by name: {sorted(named - RETRYABLE)}"


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_transient_error_a_task_can_reach_is_routed(task: str) -> None:
    if not _named_retriers(TASKS[task]):
        return  # one States.ALL retrier for everything: nothing is routed by name
    accounted = {e for t, e in RAISED if t == task} | {e for t, e in NEVER_ESCAPES if t == task}
    assert _could_raise(task) <= accounted, f"route these in {task}'s Retry or explain them"
    assert {e for t, e in NEVER_ESCAPES if t == task} <= _could_raise(task), "a stale NEVER_ESCAPES entry"


@pytest.mark.parametrize(
    ("task", "error", "scenario"),
    [(task, error, s) for (task, error), scenarios in RAISED.items() for s in scenarios],
    ids=lambda value: getattr(value, "__qualname__", str(value)).split(".<locals>")[0],
)
def test_the_task_raises_it_under_a_fault(
    task: str,
    error: str,
    scenario: Scenario,
    aws: Aws,
    wavespeed: FakeWaveSpeed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    step_event = scenario(aws, wavespeed, monkeypatch)
    with pytest.raises(errors.ERRORS_BY_NAME[error]) as raised:
        load_handler(task.lower()).handler(step_event, LambdaContext())
    assert type(raised.value).__name__ == error
