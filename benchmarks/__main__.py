"""``python -m benchmarks``: one local stack, the callback path and the poll-only path in the same run;
then (issue 6) the functions' cold init, the built layer and the api's warm overhead, each against a
baseline measured in the same run; (issue 12) the local stack's throughput in jobs/s. Prints figures,
never asserts them; ``--only`` runs some parts."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.cost import cache, fanout
from benchmarks.cost.meter import CostMeter
from benchmarks.cost.transitions import record_histories
from benchmarks.faults import check as fault_check
from benchmarks.faults import run as fault_run
from benchmarks.harness import running_bench
from benchmarks.latency import fairness, throughput
from benchmarks.latency.webhook import JobSample, run_jobs, set_path
from benchmarks.report import build, header, machine_header, render_all
from benchmarks.startup import coldstart, instances, layer, overhead

DEFAULT_JOBS = 100  # callback path: issue 6 asks for >= 100 jobs accept -> webhook
DEFAULT_POLL_JOBS = 40  # the poll-only path: transitions and cost, not the latency figure
DEFAULT_CONCURRENCY = 4
DEFAULT_WARMUP = 2
DEFAULT_SERIAL_JOBS = 30
DEFAULT_MASKS_ONLY_JOBS = 30  # callback-path jobs asking for masks only: what instances and COCO add
MASKS_ONLY = "callback_masks_only"
EMULATOR_LATENCY_S = 0.2  # fixed (faults latency_s [0.2, 0.2]) so it can be subtracted
PARTS = (
    "stack",
    "coldstart",
    "layer",
    "overhead",
    "instances",
    "throughput",
    "fanout",
    "fairness",
    "cache",
    "faults",
)
# faults (1,000 jobs under every emulator fault, crash point and hostile receiver) takes about ten
# minutes: only with --only
DEFAULT_PARTS = tuple(p for p in PARTS if p != "faults")


def parts(value: str) -> tuple[str, ...]:
    chosen = tuple(p.strip() for p in value.split(",") if p.strip())
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(PARTS)} (comma-separated), not {value!r}")
    return tuple(p for p in PARTS if p in chosen)


def run(
    *,
    jobs: int = DEFAULT_JOBS,
    poll_jobs: int = DEFAULT_POLL_JOBS,
    concurrency: int = DEFAULT_CONCURRENCY,
    warmup: int = DEFAULT_WARMUP,
    serial_jobs: int = DEFAULT_SERIAL_JOBS,
    masks_only_jobs: int = DEFAULT_MASKS_ONLY_JOBS,
    latency_s: float = EMULATOR_LATENCY_S,
) -> dict[str, Any]:
    """Run every benchmark on one in-process local stack; the report as a dict (see report.REPORT_KEYS)."""
    head = header(
        jobs=jobs,
        poll_jobs=poll_jobs,
        concurrency=concurrency,
        warmup=warmup,
        serial_jobs=serial_jobs,
        latency_s=latency_s,
    )
    results: dict[str, list[JobSample]] = {}
    with running_bench() as bench, CostMeter(bench).installed() as meter:
        for path in ("callback", "poll"):
            set_path(bench, path, latency_s)
            if warmup:  # first invokes import handlers and build clients: not what is measured
                run_jobs(bench, path, jobs=warmup, concurrency=1)
            meter.open(path)  # everything these jobs cause, counted for the cost per image
            count = jobs if path == "callback" else poll_jobs
            samples = run_jobs(bench, path, jobs=count, concurrency=concurrency, done=meter.close)
            record_histories(bench, samples)
            results[path] = samples
            if path == "callback" and serial_jobs:
                # The same path one job at a time: the stack's own latency without queueing for the GIL
                # (the whole stack, moto included, is one Python process here).
                meter.open("callback_serial")
                results["callback_serial"] = run_jobs(
                    bench, path, jobs=serial_jobs, concurrency=1, done=meter.close
                )
            if path == "callback" and masks_only_jobs:
                # The same path asking for the mask images only: what instances and the COCO file add
                bench.outputs = ["masks"]
                meter.open(MASKS_ONLY)
                masks_only = run_jobs(
                    bench, path, jobs=masks_only_jobs, concurrency=concurrency, done=meter.close
                )
                record_histories(bench, masks_only)
                states_masks_only = [s.states for s in masks_only if s.succeeded]
                bench.outputs = None
        states = {path: [s.states for s in results[path] if s.succeeded] for path in ("callback", "poll")}
        if masks_only_jobs:
            states[MASKS_ONLY] = states_masks_only
        cost = meter.report(states, serial="callback_serial")
    return {**build(head, results, latency_s), "cost": cost}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only",
        type=parts,
        default=DEFAULT_PARTS,
        help="comma-separated parts: stack (webhook latency, transitions and cost per image on the local "
        "stack), coldstart "
        "(every function's cold import and first invoke), layer (its size; .pyc or not), overhead (warm "
        "api requests), instances (Store's instances step: cold import, and duration for 1 MP and 12 MP "
        "masks), "
        "throughput (jobs/s of the local stack at several levels in flight, emulator "
        "latency 0), fanout (cost per image and latency with 0, 1, 3 and 10 registered webhook endpoints), "
        "cache (a result-cache hit's cost and latency against a miss and the cache turned off), "
        "faults (--fault-jobs jobs under every emulator fault); default: all but faults",
    )
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="callback-path jobs (default 100)")
    parser.add_argument(
        "--poll-jobs", type=int, default=DEFAULT_POLL_JOBS, help="poll-only jobs (default 40)"
    )
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="jobs in flight")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="uncounted jobs per path first")
    parser.add_argument(
        "--serial-jobs",
        type=int,
        default=DEFAULT_SERIAL_JOBS,
        help="callback-path jobs run one at a time as well (default 30; 0 skips)",
    )
    parser.add_argument(
        "--masks-only-jobs",
        type=int,
        default=DEFAULT_MASKS_ONLY_JOBS,
        help='callback-path jobs asking for outputs ["masks"] only, to show what instances add (30; 0 skips)',
    )
    parser.add_argument(
        "--coldstart-runs", type=int, default=coldstart.DEFAULT_RUNS, help="fresh children per figure (7)"
    )
    parser.add_argument(
        "--layer-runs", type=int, default=layer.DEFAULT_RUNS, help="fresh children per layer figure (7)"
    )
    parser.add_argument(
        "--instances-runs",
        type=int,
        default=instances.DEFAULT_RUNS,
        help="fresh children, instances import (7)",
    )
    parser.add_argument(
        "--instances-repeats", type=int, default=instances.DEFAULT_REPEATS, help="runs per mask size (5)"
    )
    parser.add_argument(
        "--overhead-iterations", type=int, default=overhead.DEFAULT_ITERATIONS, help="timed requests (200)"
    )
    parser.add_argument(
        "--overhead-warmup", type=int, default=overhead.DEFAULT_WARMUP, help="uncounted requests (20)"
    )
    parser.add_argument(
        "--throughput-levels",
        type=throughput.parse_levels,
        default=throughput.DEFAULT_LEVELS,
        help="in_flight:jobs pairs of the throughput part "
        f"(default {throughput.format_levels(throughput.DEFAULT_LEVELS)})",
    )
    parser.add_argument(
        "--throughput-warmup",
        type=int,
        default=throughput.DEFAULT_WARMUP,
        help=f"uncounted jobs before the throughput part's levels ({throughput.DEFAULT_WARMUP})",
    )
    parser.add_argument(
        "--fanout-jobs", type=int, default=fanout.DEFAULT_JOBS, help="jobs per level of the fanout part (20)"
    )
    parser.add_argument(
        "--fanout-levels",
        type=fanout.parse_levels,
        default=fanout.DEFAULT_LEVELS,
        help="endpoint counts of the fanout part (default 0,1,3,10)",
    )
    parser.add_argument(
        "--fairness-flood",
        type=int,
        default=fairness.FLOOD,
        help=f"jobs tenant A queues at once in the fairness part ({fairness.FLOOD})",
    )
    parser.add_argument(
        "--cache-jobs", type=int, default=cache.DEFAULT_JOBS, help="jobs per window of the cache part (20)"
    )
    parser.add_argument(
        "--fault-jobs", type=int, default=fault_run.DEFAULT_JOBS, help="jobs of the faults part (1000)"
    )
    parser.add_argument(
        "--fault-concurrency", type=int, default=fault_run.DEFAULT_CONCURRENCY, help="its jobs in flight (8)"
    )
    parser.add_argument("--fault-deadline", type=int, help="its JobDeadlineSeconds (30; at least 10)")
    parser.add_argument(
        "--fault-check",
        action="store_true",
        help="exit 1 when the faults part misses its budget (the CI variant runs 120 jobs with it)",
    )
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    _check(parser, args)
    started = time.monotonic()
    report: dict[str, Any] = {"header": machine_header()}
    part_wall_s: dict[str, float] = {}
    # The new parts run in child processes; they go first, while this process is still idle.
    measures: tuple[tuple[str, Callable[[], dict[str, Any]]], ...] = (
        ("coldstart", lambda: coldstart.run(runs=args.coldstart_runs)),
        ("layer", lambda: layer.run(runs=args.layer_runs)),
        ("overhead", lambda: overhead.run(iterations=args.overhead_iterations, warmup=args.overhead_warmup)),
        ("instances", lambda: instances.run(runs=args.instances_runs, repeats=args.instances_repeats)),
        ("throughput", lambda: throughput.run(levels=args.throughput_levels, warmup=args.throughput_warmup)),
        ("fanout", lambda: fanout.run(levels=args.fanout_levels, jobs=args.fanout_jobs)),
        ("fairness", lambda: fairness.run(flood=args.fairness_flood)),
        ("cache", lambda: cache.run(jobs=args.cache_jobs)),
        (
            "faults",
            lambda: fault_run.run(
                jobs=args.fault_jobs, concurrency=args.fault_concurrency, deadline_s=args.fault_deadline
            ),
        ),
    )
    for part, measure in measures:
        if part in args.only:
            print(f"maskgate benchmarks: {part}…", flush=True)
            part_started = time.monotonic()
            report[part] = measure()
            part_wall_s[part] = time.monotonic() - part_started
    if "stack" in args.only:
        print("maskgate benchmarks: starting the local stack…", flush=True)
        part_started = time.monotonic()
        # The in-process Lambdas share this stdout: keep their prints (Powertools EMF blobs) out of the table.
        stack_stdout = io.StringIO()
        with contextlib.redirect_stdout(stack_stdout):
            stack = run(
                jobs=args.jobs,
                poll_jobs=args.poll_jobs,
                concurrency=args.concurrency,
                warmup=args.warmup,
                serial_jobs=args.serial_jobs,
                masks_only_jobs=args.masks_only_jobs,
            )
        report.update(stack)
        report["stack_stdout_lines"] = len(stack_stdout.getvalue().splitlines())
        part_wall_s["stack"] = time.monotonic() - part_started
    wall_s = time.monotonic() - started
    report["parts"] = list(args.only)
    report["part_wall_s"] = part_wall_s
    report["wall_s"] = wall_s
    rendered = render_all(report, wall_s=wall_s)
    for name, render in (
        ("throughput", throughput.render),
        ("fanout", fanout.render),
        ("fairness", fairness.render),
        ("cache", cache.render),
    ):
        if name in report:
            rendered += "\n\n" + render(report[name])
    if "faults" in report:  # its own section, after the others
        rendered += "\n\n" + fault_check.render(report["faults"])
    print(rendered, flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    missed = fault_check.breaches(report["faults"]) if args.fault_check and "faults" in report else []
    for line in missed:
        print(f"maskgate benchmarks: the fault run missed its budget: {line}", flush=True)
    return 1 if missed else 0


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.jobs < 1 or args.poll_jobs < 1 or args.concurrency < 1 or args.warmup < 0 or args.serial_jobs < 0:
        parser.error("--jobs, --poll-jobs and --concurrency must be >= 1, --warmup and --serial-jobs >= 0")
    if min(args.coldstart_runs, args.layer_runs, args.overhead_iterations) < 1 or args.overhead_warmup < 0:
        parser.error("--coldstart-runs, --layer-runs and --overhead-iterations must be >= 1")
    if min(args.fanout_jobs, args.fairness_flood, args.cache_jobs) < 1:
        parser.error("--fanout-jobs, --fairness-flood and --cache-jobs must be >= 1")
    if args.throughput_warmup < 0:
        parser.error("--throughput-warmup must be >= 0")
    if args.fault_jobs < 1 or args.fault_concurrency < 1:
        parser.error("--fault-jobs and --fault-concurrency must be >= 1")


if __name__ == "__main__":
    raise SystemExit(main())
