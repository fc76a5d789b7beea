"""Warm overhead of the api function: ``POST /v1/segmentations`` and
``GET /v1/segmentations/{id}`` through ``functions/api/app.py`` in-process on moto (decorator mode),
against a bare Mangum hello-world handler measured in the same run, interleaved request by request.

``run()`` starts a fresh child (``python -m benchmarks.startup.overhead``): moto and the functions'
environment stay out of the parent, which may also hold the in-process local stack. Besides the hello
baseline, each route is compared with the same AWS calls made on bare boto3 clients (recorded from its own
warm-up requests, replayed inside the bare app's POST route), so moto's share of the time can be taken out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.startup.lambda_env import ROOT, function_env
from benchmarks.stats import percentile, ratio

DEFAULT_ITERATIONS = 200
DEFAULT_WARMUP = 20


def _us(values: list[float]) -> dict[str, float]:
    us = [v * 1e6 for v in values]
    return {"n": len(us), "p50_us": percentile(us, 50), "p95_us": percentile(us, 95)}


def measure(*, iterations: int, warmup: int) -> dict[str, Any]:
    """In this process: moto, the api handler, the bare app; every request timed, interleaved."""
    import importlib.util

    from benchmarks.startup import lambda_env
    from benchmarks.startup.coldchild import import_bare_api

    recorder = lambda_env.CallRecorder()
    recorder.install()  # before any default-session client exists
    lambda_env.setup_aws()
    key = lambda_env.api_key()
    spec = importlib.util.spec_from_file_location("app", ROOT / "functions" / "api" / "app.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("functions/api/app.py not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    api = module.handler
    replay: dict[str, Callable[[], int]] = {}
    bare = import_bare_api({}, replay)
    context = lambda_env.LambdaContext()
    create = lambda_env.sample_event("api_create_segmentation")
    create["headers"]["authorization"] = f"Bearer {key}"
    hello = lambda_env.http_event("GET", "/hello")
    bare_post = lambda_env.http_event("POST", "/hello")

    def calls_of(event: dict[str, Any]) -> tuple[list[lambda_env.Call], dict[str, Any]]:
        start = len(recorder.calls)
        response = api(event, context)
        if response["statusCode"] >= 300:
            raise RuntimeError(f"{event['routeKey']} -> {response['statusCode']}: {response['body'][:300]}")
        return recorder.calls[start:], response

    job_id = ""
    post_calls: list[lambda_env.Call] = []
    for _ in range(max(warmup, 1)):
        post_calls, response = calls_of(create)
        job_id = json.loads(response["body"])["id"]
    get = lambda_env.http_event("GET", f"/v1/segmentations/{job_id}", key=key)
    get["pathParameters"] = {"id": job_id}
    get_calls: list[lambda_env.Call] = []
    for _ in range(max(warmup, 1)):
        get_calls, _ = calls_of(get)
        bare(hello, context)
    replays = {"post": lambda_env.replayer(post_calls), "get": lambda_env.replayer(get_calls)}
    for name in ("post", "get"):
        replay["run"] = replays[name]
        for _ in range(max(warmup, 1)):
            bare(bare_post, context)

    timings: dict[str, list[float]] = {k: [] for k in ("post", "post_bare", "get", "get_bare", "hello")}

    def timed(name: str, handler: Any, event: dict[str, Any]) -> None:
        started = time.perf_counter()
        handler(event, context)
        timings[name].append(time.perf_counter() - started)

    for _ in range(iterations):
        timed("post", api, create)
        replay["run"] = replays["post"]
        timed("post_bare", bare, bare_post)
        timed("get", api, get)
        replay["run"] = replays["get"]
        timed("get_bare", bare, bare_post)
        timed("hello", bare, hello)
    return {
        "iterations": iterations,
        "warmup": warmup,
        "post_calls": lambda_env.call_names(post_calls),
        "get_calls": lambda_env.call_names(get_calls),
        **{name: _us(values) for name, values in timings.items()},
    }


def run(*, iterations: int = DEFAULT_ITERATIONS, warmup: int = DEFAULT_WARMUP) -> dict[str, Any]:
    """Measure in a fresh child; the figures with their ratios."""
    env = {**function_env(), "MASKGATE_TENANT_REQUESTS_PER_MINUTE": "1000000000"}  # limiter on, never hit
    with tempfile.TemporaryDirectory(prefix="maskgate-overhead-") as tmp:
        out = Path(tmp) / "overhead.json"
        argv = [sys.executable, "-m", "benchmarks.startup.overhead", "--iterations", str(iterations)]
        argv += ["--warmup", str(warmup), "--json", str(out)]
        done = subprocess.run(
            argv,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"overhead child failed ({done.returncode}):\n{done.stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(out.read_text())
    hello = figures["hello"]["p50_us"]
    for name in ("post", "get"):
        mine, calls = figures[name]["p50_us"], figures[f"{name}_bare"]["p50_us"]
        figures[f"{name}_over_hello"] = ratio(mine, hello)
        figures[f"{name}_over_calls"] = ratio(mine, calls)
        figures[f"{name}_own_us"] = mine - calls
    return figures


def _row(label: str, f: dict[str, float], hello: float, extra: str = "") -> str:
    return (
        f"  {label:<58} {f['p50_us'] / 1000:>8.2f} {f['p95_us'] / 1000:>8.2f} "
        f"{ratio(f['p50_us'], hello):>7.1f}x{extra}"
    )


def _route(report: dict[str, Any], name: str, label: str, hello: float) -> list[str]:
    """The handler's row, then the bare app making the same calls, with what the handler adds to it."""
    own_ms, times = report[f"{name}_own_us"] / 1000, report[f"{name}_over_calls"]
    own = f"  handler minus this: {own_ms:.2f} ms ({times:.2f}x)"
    calls = len(report[f"{name}_calls"])
    return [
        _row(label, report[name], hello),
        _row(f"  bare app making the same {calls} AWS calls", report[f"{name}_bare"], hello, own),
    ]


def render(report: dict[str, Any]) -> str:
    hello = report["hello"]["p50_us"]
    return "\n".join(
        [
            f"  warm api overhead, in-process on moto: {report['iterations']} interleaved iterations after "
            f"{report['warmup']} warm-up requests each",
            f"  {'request':<58} {'p50 ms':>8} {'p95 ms':>8} {'/hello':>8}",
            _row("bare Mangum hello (FastAPI + Mangum + Logger, GET /hello)", report["hello"], hello),
            *_route(report, "post", "POST /v1/segmentations (api handler, 202)", hello),
            *_route(report, "get", "GET /v1/segmentations/{id} (api handler, 200)", hello),
            "  POST calls: " + ", ".join(report["post_calls"]),
            "  GET calls:  " + ", ".join(report["get_calls"]),
            "  (moto answers in-process, so an AWS call costs moto's time, not a network round trip; a",
            "  replayed POST's PutItem is refused and its StartExecution idempotent, at about the same cost)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup.overhead", description=__doc__)
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    figures = measure(iterations=args.iterations, warmup=args.warmup)  # logs go to stdout (DEVNULL)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
