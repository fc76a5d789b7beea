"""Injected crashes: the registry's rates and counts, the hook installed in maskgate.crashpoints, and the
runtime's timeout payload the handler runner reports for a crashed invocation on every invoke path."""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maskgate import crashpoints
from maskgate_local.stack.aws import ASYNC_ATTEMPTS, LocalAws
from maskgate_local.stack.crashes import CrashRegistry, InjectedCrash, InvalidRates
from maskgate_local.stack.handlers import FunctionSpec, HandlerRunner

EVENTS = Path(__file__).resolve().parents[3] / "events"


@pytest.fixture
def crashes() -> Iterator[CrashRegistry]:
    registry = CrashRegistry(seed=7)
    registry.install()
    try:
        yield registry
    finally:
        registry.uninstall()


def runner_for(tmp_path: Path, source: str, *, timeout: int = 30) -> HandlerRunner:
    """A runner for a handler module written from ``source`` (a unique module name per test)."""
    logical_id = f"Fake{uuid.uuid4().hex[:8]}"
    code_dir = tmp_path / logical_id
    code_dir.mkdir()
    (code_dir / "app.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return HandlerRunner(
        FunctionSpec(
            logical_id=logical_id,
            function_name=f"maskgate-{logical_id}",
            handler="app.handler",
            code_dir=code_dir,
            timeout=timeout,
        )
    )


def timed_out(point: str, seconds: int) -> dict[str, Any]:
    return {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"Task timed out after {seconds}.00 seconds (injected crash at {point})",
    }


# --- the registry -----------------------------------------------------------------------------------


def test_registry_lists_every_point_at_rate_zero() -> None:
    listing = CrashRegistry().listing()

    points = crashpoints.POINTS.items()
    expected = {name: {"description": text, "rate": 0.0, "injected": 0} for name, text in points}
    assert listing == {"points": expected}


def test_registry_sets_only_the_rates_named() -> None:
    registry = CrashRegistry()

    registry.set_rates({"submit.after_post": 0.25, "api.after_job": 1})

    rates = {name: point["rate"] for name, point in registry.listing()["points"].items()}
    assert rates == dict.fromkeys(crashpoints.POINTS, 0.0) | {"submit.after_post": 0.25, "api.after_job": 1.0}


@pytest.mark.parametrize(
    ("rates", "complaint"),
    [
        ({"submit.after_post": 0.5, "submit.nowhere": 0.5}, "unknown crash points: submit.nowhere"),
        ({"submit.after_post": 1.5}, "must be a number in [0, 1], not 1.5"),
        ({"submit.after_post": -0.1}, "must be a number in [0, 1], not -0.1"),
        ({"submit.after_post": "0.5"}, 'must be a number in [0, 1], not "0.5"'),
        ({"submit.after_post": True}, "must be a number in [0, 1], not true"),
        ({"submit.after_post": None}, "must be a number in [0, 1], not null"),
        ({"submit.after_post": float("nan")}, "must be a number in [0, 1], not NaN"),
        ([["submit.after_post", 0.5]], "must be a JSON object"),
    ],
)
def test_registry_refuses_invalid_rates_and_changes_nothing(rates: Any, complaint: str) -> None:
    registry = CrashRegistry()
    registry.set_rates({"store.after_masks": 0.5})
    before = registry.listing()

    with pytest.raises(InvalidRates) as refused:
        registry.set_rates(rates)

    assert complaint in str(refused.value)
    assert registry.listing() == before


def test_registry_draw_counts_each_crash() -> None:
    registry = CrashRegistry(seed=1)
    registry.set_rates({"submit.after_post": 1.0})

    draws = [registry.draw("submit.after_post") for _ in range(3)] + [registry.draw("store.after_masks")]

    assert draws == [True, True, True, False]
    assert registry.injected("submit.after_post") == 3
    assert registry.listing()["points"]["store.after_masks"]["injected"] == 0


def test_registry_with_a_seed_repeats_its_draws_after_reset() -> None:
    registry = CrashRegistry(seed=42)
    registry.set_rates({"submit.after_post": 0.5})
    first = [registry.draw("submit.after_post") for _ in range(40)]

    registry.reset()
    registry.set_rates({"submit.after_post": 0.5})
    again = [registry.draw("submit.after_post") for _ in range(40)]

    assert first == again
    assert 0 < sum(first) < 40


def test_registry_reset_clears_rates_and_counts() -> None:
    registry = CrashRegistry()
    registry.set_rates({"notify.after_send": 1.0})
    registry.draw("notify.after_send")

    registry.reset()

    assert registry.listing() == CrashRegistry().listing()


# --- the hook -------------------------------------------------------------------------------------------


def test_hook_raises_a_crash_no_except_exception_can_swallow(crashes: CrashRegistry) -> None:
    crashes.set_rates({"store.after_masks": 1.0})

    with pytest.raises(InjectedCrash) as crash:
        try:
            crashpoints.reached("store.after_masks")
        except Exception:  # the layer's broadest handler
            pytest.fail("an injected crash must not be an Exception")

    assert crash.value.point == "store.after_masks"
    assert not isinstance(crash.value, Exception)


def test_hook_at_rate_zero_lets_the_step_go_on(crashes: CrashRegistry) -> None:
    crashpoints.reached("store.after_masks")

    assert crashes.injected("store.after_masks") == 0


def test_uninstalled_hook_leaves_crash_points_inert() -> None:
    registry = CrashRegistry()
    registry.set_rates({"store.after_masks": 1.0})
    registry.install()
    registry.uninstall()

    crashpoints.reached("store.after_masks")

    assert registry.injected("store.after_masks") == 0


# --- the runner's payload -------------------------------------------------------------------------------

STEP = """
    from maskgate import crashpoints

    def handler(event, context):
        try:
            crashpoints.reached("submit.after_post")
        except Exception:
            return {"swallowed": True}
        return {"done": True}
"""


def test_runner_reports_a_crash_as_the_runtimes_timeout(tmp_path: Path, crashes: CrashRegistry) -> None:
    runner = runner_for(tmp_path, STEP, timeout=30)
    crashes.set_rates({"submit.after_post": 1.0})

    payload, errored = runner.invoke({})

    assert errored is True
    assert json.loads(payload) == timed_out("submit.after_post", 30)


def test_runner_runs_the_step_through_when_no_crash_is_drawn(tmp_path: Path, crashes: CrashRegistry) -> None:
    payload, errored = runner_for(tmp_path, STEP).invoke({})

    assert (json.loads(payload), errored) == ({"done": True}, False)
    assert crashes.injected("submit.after_post") == 0


def test_runner_reports_a_crash_the_handler_caught_and_answered(
    tmp_path: Path, crashes: CrashRegistry
) -> None:
    # as Mangum does: every BaseException becomes a 500 answer, yet the runtime had ended the invocation
    runner = runner_for(
        tmp_path,
        """
        from maskgate import crashpoints

        def handler(event, context):
            try:
                crashpoints.reached("callback.after_mark")
            except BaseException:
                return {"statusCode": 500, "body": "Internal Server Error"}
        """,
        timeout=10,
    )
    crashes.set_rates({"callback.after_mark": 1.0})

    assert runner.invoke({}) == (json.dumps(timed_out("callback.after_mark", 10)), True)


def test_runner_reports_a_crash_raised_in_a_thread_of_the_handler(
    tmp_path: Path, crashes: CrashRegistry
) -> None:
    runner = runner_for(
        tmp_path,
        """
        from concurrent.futures import ThreadPoolExecutor
        from maskgate import crashpoints

        def handler(event, context):
            with ThreadPoolExecutor(1) as pool:  # its thread does not share the invocation's context
                return pool.submit(crashpoints.reached, "store.after_masks").result()
        """,
    )
    crashes.set_rates({"store.after_masks": 1.0})

    payload, errored = runner.invoke({})

    assert (json.loads(payload)["errorType"], errored) == ("Sandbox.Timedout", True)


def test_runner_lets_keyboard_interrupt_through(tmp_path: Path) -> None:
    runner = runner_for(tmp_path, "def handler(event, context):\n    raise KeyboardInterrupt\n")

    with pytest.raises(KeyboardInterrupt):
        runner.invoke({})


API = """
    from fastapi import FastAPI
    from mangum import Mangum
    from maskgate import crashpoints

    app = FastAPI()

    @app.get("/v1/health")
    def health():  # a sync route: FastAPI runs it on anyio's thread pool
        crashpoints.reached("api.after_job")
        return {"status": "ok"}

    handler = Mangum(app, lifespan="off")
"""


def test_runner_reports_a_crash_inside_fastapi_under_mangum(
    tmp_path: Path, crashes: CrashRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    runner = runner_for(tmp_path, API)
    event = health_event()
    crashes.set_rates({"api.after_job": 1.0})

    crashed = runner.invoke(event)
    crashes.reset()
    served, errored = runner.invoke(event)

    assert crashed == (json.dumps(timed_out("api.after_job", 30)), True)
    assert (json.loads(served)["statusCode"], errored) == (200, False)
    assert [r for r in caplog.records if r.name.startswith("mangum")] == []  # no stack trace per crash


def health_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "api_get_segmentation.json").read_text())
    event.update(rawPath="/v1/health", routeKey="GET /v1/health", rawQueryString="")
    event.pop("pathParameters", None)
    event["requestContext"]["http"].update(method="GET", path="/v1/health")
    return event


def test_async_invoke_counts_a_crash_as_a_failed_attempt(tmp_path: Path, crashes: CrashRegistry) -> None:
    runner = runner_for(tmp_path, STEP)
    aws = LocalAws(port=0)  # not started: only its async-invoke loop runs
    aws.register([runner.spec])
    crashes.set_rates({"submit.after_post": 1.0})

    aws._add_pending(1)
    aws._run_async(runner.spec.arn, {"Records": []})

    assert crashes.injected("submit.after_post") == ASYNC_ATTEMPTS
    assert aws.wait_idle(timeout=0)
