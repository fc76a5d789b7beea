"""Issue 12: end-to-end throughput of the local stack, in jobs per second.

ONE in-process local stack; the emulator's latency is ~0 (``latency_s: [0, 0]``) so what is measured
is the stack itself. Submit waits ``PollInitialSeconds`` for the callback before polling: the template's
default, 10 s as in AWS, unless ``--poll-initial-seconds`` says otherwise (the local stack's own 1 s,
there so tests of lost callbacks end quickly, is shorter than a job's wait in a queue 32 deep, and
such jobs take the Poll step as well: what is measured is then no longer the callback path alone).
Each job is a box prompt on the sample scene POSTed to ``/v1/segmentations`` with a webhook to a
verifying receiver (the callback path). At each level, ``jobs`` jobs run with at most ``in_flight`` at
a time; jobs/s is ``jobs`` over the wall time from the first POST to the last
verified webhook. The process's CPU time over the same window is reported too (jobs per CPU-second
is steadier than jobs/s on a shared machine): the whole stack, moto included, is this one process.

The machine's own speed is measured beside each level, before and after it, while the stack is idle:
the CPU time of a fixed pure-Python workload (``calibrate``: JSON and dict work of the stack's kind).
On a shared machine it drifts by half from one minute to the next, and jobs/s with it: runs and levels
compare by it (a level at a slower moment shows a larger calibration time).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import math
import pstats
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import Bench, run_part, running_bench
from benchmarks.stats import percentile, ratio

DEFAULT_LEVELS = ((1, 20), (8, 80), (32, 160))  # (in flight, jobs)
DEFAULT_WARMUP = 8
DEFAULT_POLL_INITIAL_S = 10  # the template's default: the callback wait in AWS
WEBHOOK_TIMEOUT_S = 180.0


def parse_levels(value: str) -> tuple[tuple[int, int], ...]:
    """``"1:20,8:80,32:160"`` → ((1, 20), (8, 80), (32, 160))."""
    levels = []
    for item in value.split(","):
        in_flight, _, jobs = item.strip().partition(":")
        levels.append((int(in_flight), int(jobs)))
    if not levels or any(f < 1 or j < 1 for f, j in levels):
        raise ValueError(f"levels are in_flight:jobs pairs, both >= 1, not {value!r}")
    return tuple(levels)


CALIBRATION_ROUNDS = 400
_CALIBRATION_ITEM = {
    "pk": {"S": "JOB#seg_01M98ZVNCD6GSFGK36YA0P9B4D"},
    "status": {"S": "submitted"},
    "request": {"S": json.dumps({"prompt": "the red box", "boxes": [[4, 4, 40, 40]], "points": []})},
    "deliveries": {"L": [{"M": {"attempt": {"N": str(n)}, "outcome": {"S": "delivered"}}} for n in range(4)]},
    **{f"field_{n}": {"S": "v" * 24} for n in range(16)},
}


def calibrate(rounds: int = CALIBRATION_ROUNDS) -> float:
    """CPU seconds of a fixed pure-Python workload (an item's JSON round trip and a walk of it, as a
    request to the stack makes): the machine's speed at this moment, in the unit of this run."""
    started = time.thread_time()  # this thread's alone: the stack's own threads may still be winding down
    for _ in range(rounds):
        copied = json.loads(json.dumps(_CALIBRATION_ITEM))
        sum(len(key) + len(str(value)) for key, value in sorted(copied.items()))
    return time.thread_time() - started


def run_level(bench: Bench, *, in_flight: int, jobs: int) -> dict[str, Any]:
    """``jobs`` callback-path jobs at most ``in_flight`` at a time; the level's figures, with the
    calibration's CPU time before and after (the mean, in ms)."""
    before = calibrate()
    figures = _run_jobs(bench, in_flight=in_flight, jobs=jobs)
    return {**figures, "calibration_ms": (before + calibrate()) / 2 * 1000}


def _run_jobs(bench: Bench, *, in_flight: int, jobs: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]

    def one(index: int) -> tuple[float, float, float, str]:
        posted = time.time()
        try:
            job_id, posted, accepted = bench.submit({"bench": f"{run}-throughput-{index}"})
        except (httpx.HTTPError, RuntimeError) as exc:  # not accepted (a timeout, a 5xx): counted, not raised
            return posted, math.nan, math.nan, f"not accepted: {type(exc).__name__}"
        try:
            delivery = bench.receiver.wait_for(job_id, timeout=WEBHOOK_TIMEOUT_S)
        except TimeoutError:  # counted as not succeeded: figures are printed, not asserted
            return posted, accepted, math.nan, "no webhook"
        data = (delivery.payload or {})["data"]
        error = data.get("error") or {}
        status = str(data["status"])  # a job that did not succeed is counted with its error type and id
        if status != "succeeded":
            status = f"{status}: {error.get('type', '?')} ({job_id})"
        return posted, accepted, delivery.received_at, status

    cpu_started = time.process_time()
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="bench-throughput") as pool:
        samples = list(pool.map(one, range(jobs)))
    cpu_s = time.process_time() - cpu_started
    received = [s[2] for s in samples if not math.isnan(s[2])]
    wall_s = (max(received) if received else time.time()) - min(s[0] for s in samples)
    return {
        "in_flight": in_flight,
        "jobs": jobs,
        "succeeded": sum(1 for s in samples if s[3] == "succeeded"),
        "outcomes": dict(Counter(s[3] for s in samples)),
        "webhooks": len(received),
        "wall_s": wall_s,
        "jobs_per_s": ratio(len(received), wall_s),
        "cpu_s": cpu_s,
        "jobs_per_cpu_s": ratio(len(received), cpu_s),
        "accepted_to_webhook_p50_ms": percentile(
            [(s[2] - s[1]) * 1000 for s in samples if not math.isnan(s[2])], 50
        ),
    }


def format_levels(levels: Sequence[tuple[int, int]]) -> str:
    return ",".join(f"{in_flight}:{jobs}" for in_flight, jobs in levels)


def run(
    *,
    levels: Sequence[tuple[int, int]] = DEFAULT_LEVELS,
    warmup: int = DEFAULT_WARMUP,
    poll_initial_s: int = DEFAULT_POLL_INITIAL_S,
) -> dict[str, Any]:
    """Run the part in a fresh child (the in-process stack sets os.environ and patches moto, and this
    process may have run another stack already)."""
    args = ["--levels", format_levels(levels)]
    args += ["--warmup", str(warmup), "--poll-initial-seconds", str(poll_initial_s)]
    return run_part("benchmarks.latency.throughput", args)


def measure(
    *,
    levels: Sequence[tuple[int, int]] = DEFAULT_LEVELS,
    warmup: int = DEFAULT_WARMUP,
    poll_initial_s: int = DEFAULT_POLL_INITIAL_S,
    profiler: Profiler | None = None,
) -> dict[str, Any]:
    """Every level on one local stack in this process, after ``warmup`` uncounted jobs (handler
    imports, clients)."""
    parameters = {"PollInitialSeconds": str(poll_initial_s)}
    # The in-process Lambdas share this stdout: keep their prints out of the figures.
    with contextlib.redirect_stdout(io.StringIO()), running_bench(parameters) as bench:
        bench.faults(latency_s=[0, 0])
        if warmup:
            run_level(bench, in_flight=min(warmup, 8), jobs=warmup)
        if profiler is not None:
            profiler.reset()
        results = [run_level(bench, in_flight=in_flight, jobs=jobs) for in_flight, jobs in levels]
    return {
        "warmup_jobs": warmup,
        "emulator_latency_s": [0, 0],
        "poll_initial_s": poll_initial_s,
        "levels": results,
    }


def render(report: dict[str, Any]) -> str:
    lines = [
        "throughput of the local stack (callback path, emulator latency 0, "
        f"PollInitialSeconds {report.get('poll_initial_s', DEFAULT_POLL_INITIAL_S)}; "
        "first POST → last verified webhook)",
        f"  {'in flight':>9}  {'jobs':>5}  {'ok':>5}  {'wall s':>7}  {'jobs/s':>7}  {'cpu s':>7}"
        f"  {'jobs/cpu-s':>10}  {'202→webhook p50':>16}  {'calibration':>11}",
    ]
    for level in report["levels"]:
        lines.append(
            f"  {level['in_flight']:>9}  {level['jobs']:>5}  {level['succeeded']:>5}  {level['wall_s']:>7.1f}"
            f"  {level['jobs_per_s']:>7.2f}  {level['cpu_s']:>7.1f}  {level['jobs_per_cpu_s']:>10.2f}"
            f"  {level['accepted_to_webhook_p50_ms']:>13.0f} ms  {level['calibration_ms']:>8.1f} ms"
        )
    lines.append(
        "  calibration: the CPU time of a fixed pure-Python workload beside each level (the machine's "
        "speed then; lower is faster)"
    )
    for level in report["levels"]:
        for outcome, count in sorted(level.get("outcomes", {}).items()):
            if outcome != "succeeded":
                lines.append(f"  {level['in_flight']} in flight: {count} × {outcome}")
    return "\n".join(lines)


class Profiler:
    """cProfile on every thread started while it is on (the stack's servers, workers, executions) and
    on the one that started it; ``reset()`` drops what was counted so far (the warm-up). Times are wall
    clock per thread: a call that blocks (a socket, a lock, the GIL) counts its wait."""

    def __init__(self) -> None:
        self._profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _new(self) -> cProfile.Profile:
        profile = cProfile.Profile()
        with self._lock:
            self._profiles.append(profile)
        return profile

    def _start_thread(self, *_: Any) -> None:  # a new thread's first profile event: hand over to cProfile
        sys.setprofile(None)
        self._new().enable()

    @contextlib.contextmanager
    def running(self, path: Path) -> Iterator[Profiler]:
        main_profile = self._new()
        threading.setprofile(self._start_thread)
        main_profile.enable()
        try:
            yield self
        finally:
            main_profile.disable()
            threading.setprofile(None)
            with self._lock:
                profiles = list(self._profiles)
            stats: pstats.Stats | None = None
            for profile in profiles:
                profile.create_stats()  # the others still run in their threads: what they have so far
                if profile.stats:
                    stats = pstats.Stats(profile) if stats is None else stats.add(profile)
            if stats is not None:
                stats.dump_stats(str(path))

    def reset(self) -> None:
        with self._lock:
            for profile in self._profiles:
                profile.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency.throughput", description=__doc__)
    parser.add_argument(
        "--levels",
        type=parse_levels,
        default=DEFAULT_LEVELS,
        help=f"in_flight:jobs pairs (default {format_levels(DEFAULT_LEVELS)})",
    )
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="uncounted jobs first (8)")
    parser.add_argument(
        "--poll-initial-seconds",
        type=int,
        default=DEFAULT_POLL_INITIAL_S,
        help=f"Submit's wait for the callback before polling ({DEFAULT_POLL_INITIAL_S}, the template's "
        "default; the local stack's own is 1)",
    )
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    parser.add_argument(
        "--profile",
        type=Path,
        help="cProfile every thread after the warm-up into this file; slows the run down",
    )
    args = parser.parse_args(argv)
    if args.poll_initial_seconds < 1:
        parser.error("--poll-initial-seconds must be >= 1")
    options: dict[str, Any] = {
        "levels": args.levels,
        "warmup": args.warmup,
        "poll_initial_s": args.poll_initial_seconds,
    }
    if args.profile is None:
        report = measure(**options)
    else:
        with Profiler().running(args.profile) as profiler:
            report = measure(**options, profiler=profiler)
    print(render(report), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
