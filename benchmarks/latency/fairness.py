"""Fair admission: tenant B's wait for a WaveSpeed slot while tenant A floods, fair vs first-come.

The real ``maskgate.stores.admission.Admission`` runs against DynamoDB (moto, in this process) on a
virtual clock, driven by a discrete-event model of the workflow: tenant A queues ``flood`` jobs at
once, tenant B sends ``b_jobs`` spread over A's backlog, every prediction holds its slot for
``job_seconds`` (±20 %). Two rules, in the same run and on the same arrivals and durations:

- **fair** (maskgate today): a job that finds the tier full waits in line (AwaitSlot) and is woken
  when a released slot is handed to it (``wake_seconds`` later it submits);
- **first-come** (the rule before the line): every waiting job retries on its own, as the workflow's
  ``AdmissionDeferred`` retrier did (5 s × 1.5 up to 60 s, full jitter, 20 tries, then the job
  failed); whichever retries first while a slot is free wins it.

B's wait is from its arrival to its submit; the figures are its p50/p95/max, also in job durations,
and the state transitions the waiting cost (fair: AwaitSlot and back to Submit, 2 per wait; first-
come: one per retry). It prints figures and never asserts them.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.stats import percentile

SLOTS = 2
FLOOD = 200
B_JOBS = 20  # a tenth of the flood: B alone uses a small share of the tier
JOB_SECONDS = 6.0  # SAM3's ~5 s, the submit and the store
WAKE_SECONDS = 0.2  # a hand-over's wake: SendTaskSuccess, AwaitSlot → Submit, the Submit invocation
RETRY = (5.0, 1.5, 60.0, 20)  # the old AdmissionDeferred retrier: interval, rate, max delay, attempts
TABLE = "maskgate-fairness-bench"


@dataclass
class Sim:
    """One run of one rule: the virtual clock, the event queue and what each job did."""

    now: float = 0.0
    events: list[tuple[float, int, str, str]] = field(default_factory=list)
    arrived: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    transitions: int = 0
    failed: int = 0
    _seq: int = 0

    def at(self, when: float, kind: str, job: str) -> None:
        self._seq += 1
        heapq.heappush(self.events, (when, self._seq, kind, job))

    def run(self, handle: Callable[[str, str], None]) -> None:
        while self.events:
            self.now, _, kind, job = heapq.heappop(self.events)
            handle(kind, job)


def arrivals(
    flood: int, b_jobs: int, job_seconds: float, slots: int, seed: int
) -> list[tuple[float, str, str]]:
    """(time, job id, tenant): A's flood at 0, B's jobs spread over the time A's backlog takes."""
    rng = random.Random(seed)
    backlog_s = flood * job_seconds / slots
    jobs = [(0.001 * n, f"seg_a{n:05d}", "a") for n in range(flood)]
    jobs += [(rng.uniform(1.0, backlog_s * 0.9), f"seg_b{n:05d}", "b") for n in range(b_jobs)]
    return sorted(jobs)


def durations(jobs: list[tuple[float, str, str]], job_seconds: float, seed: int) -> dict[str, float]:
    rng = random.Random(seed + 1)
    return {job: job_seconds * rng.uniform(0.8, 1.2) for _, job, _ in jobs}


def run_fair(jobs: list[tuple[float, str, str]], took: dict[str, float], *, slots: int, wake_s: float) -> Sim:
    """The real Admission on moto, its hand-over waking the job ``wake_s`` later."""
    import boto3
    from moto import mock_aws

    from maskgate.errors import AdmissionQueued
    from maskgate.stores.admission import Admission

    sim = Sim()
    tenant = {job: who for _, job, who in jobs}
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        admission = Admission(
            table=TABLE,
            client=client,
            concurrency=slots,
            per_minute=0,
            stale_after_seconds=3600 * 24,
            clock=lambda: sim.now,
            wake=lambda job: sim.at(sim.now + wake_s, "woken", job),
        )

        def handle(kind: str, job: str) -> None:
            if kind == "finish":
                admission.release(job)
                return
            sim.transitions += 1  # Submit (arrival, or back from AwaitSlot)
            try:
                admission.admit(job, tenant=tenant[job])
            except AdmissionQueued:
                sim.transitions += 1  # AwaitSlot
                return  # parked until woken
            sim.started[job] = sim.now
            sim.at(sim.now + took[job], "finish", job)

        for when, job, _ in jobs:
            sim.arrived[job] = when
            sim.at(when, "arrive", job)
        sim.run(handle)
    return sim


def run_first_come(
    jobs: list[tuple[float, str, str]], took: dict[str, float], *, slots: int, seed: int
) -> Sim:
    """The rule before the line: a full tier defers the job to its own jittered retry."""
    sim, rng = Sim(), random.Random(seed + 2)
    interval, rate, max_delay, attempts = RETRY
    holding: set[str] = set()
    tries: dict[str, int] = {}

    def handle(kind: str, job: str) -> None:
        if kind == "finish":
            holding.discard(job)
            return
        sim.transitions += 1
        if len(holding) < slots:
            holding.add(job)
            sim.started[job] = sim.now
            sim.at(sim.now + took[job], "finish", job)
            return
        tries[job] = tries.get(job, 0) + 1
        if tries[job] > attempts:
            sim.failed += 1  # AdmissionDeferred past its retries: the job failed
            return
        delay = min(interval * rate ** (tries[job] - 1), max_delay)
        sim.at(sim.now + rng.uniform(0, delay), "retry", job)

    for when, job, _ in jobs:
        sim.arrived[job] = when
        sim.at(when, "arrive", job)
    sim.run(handle)
    return sim


def figures(sim: Sim, tenant: str, job_seconds: float) -> dict[str, Any]:
    waits = [
        sim.started[j] - sim.arrived[j]
        for j in sim.arrived
        if j.startswith(f"seg_{tenant}") and j in sim.started
    ]
    never = sum(1 for j in sim.arrived if j.startswith(f"seg_{tenant}") and j not in sim.started)
    p95 = percentile(waits, 95)
    return {
        "jobs": sum(1 for j in sim.arrived if j.startswith(f"seg_{tenant}")),
        "wait_p50_s": percentile(waits, 50),
        "wait_p95_s": p95,
        "wait_max_s": max(waits, default=float("nan")),
        "wait_p95_job_durations": p95 / job_seconds,
        "never_started": never,
    }


def run(*, slots: int = SLOTS, flood: int = FLOOD, b_jobs: int | None = None) -> dict[str, Any]:
    """Run the part in a fresh child (moto's mock is process-wide; this process may run a stack);
    B sends a tenth of A's flood unless ``b_jobs`` says otherwise."""
    b_jobs = max(1, flood // 10) if b_jobs is None else b_jobs
    command = [sys.executable, "-m", "benchmarks.latency.fairness", "--json"]
    command += ["--slots", str(slots), "--flood", str(flood), "--b-jobs", str(b_jobs)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800)
    return dict(json.loads(done.stdout))


def measure(
    *,
    slots: int = SLOTS,
    flood: int = FLOOD,
    b_jobs: int = B_JOBS,
    job_seconds: float = JOB_SECONDS,
    wake_seconds: float = WAKE_SECONDS,
    seed: int = 7,
) -> dict[str, Any]:
    """Both rules on the same arrivals and durations: B's waits, A's, and what the waiting cost."""
    jobs = arrivals(flood, b_jobs, job_seconds, slots, seed)
    took = durations(jobs, job_seconds, seed)
    fair = run_fair(jobs, took, slots=slots, wake_s=wake_seconds)
    first = run_first_come(jobs, took, slots=slots, seed=seed)
    total = flood + b_jobs
    return {
        "slots": slots,
        "flood": flood,
        "b_jobs": b_jobs,
        "job_seconds": job_seconds,
        "fair": {
            "b": figures(fair, "b", job_seconds),
            "a": figures(fair, "a", job_seconds),
            "transitions_per_job": fair.transitions / total,
            "failed": fair.failed,
        },
        "first_come": {
            "b": figures(first, "b", job_seconds),
            "a": figures(first, "a", job_seconds),
            "transitions_per_job": first.transitions / total,
            "failed": first.failed,
        },
    }


def render(part: dict[str, Any]) -> str:
    lines = [
        f"fair admission: tenant B's wait for a WaveSpeed slot while tenant A floods "
        f"({part['flood']} jobs at once, {part['b_jobs']} of B's spread over the backlog, "
        f"{part['slots']} slots, {part['job_seconds']:.0f} s a job ±20 %; the real Admission on moto, "
        "virtual clock)",
        f"  {'rule':<11} {'B p50 s':>8} {'B p95 s':>8} {'B max s':>8} {'B p95 / job':>11} "
        f"{'A p95 s':>8} {'failed':>6} {'admission transitions/job':>25}",
    ]
    for name, key in (("fair", "fair"), ("first-come", "first_come")):
        r = part[key]
        b, a = r["b"], r["a"]
        lines.append(
            f"  {name:<11} {b['wait_p50_s']:>8.1f} {b['wait_p95_s']:>8.1f} {b['wait_max_s']:>8.1f} "
            f"{b['wait_p95_job_durations']:>11.2f} {a['wait_p95_s']:>8.1f} {r['failed']:>6} "
            f"{r['transitions_per_job']:>25.2f}"
        )
    ratio = part["first_come"]["b"]["wait_p95_s"] / max(part["fair"]["b"]["wait_p95_s"], 1e-9)
    lines.append(f"  B's p95 wait, first-come / fair: {ratio:.1f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency.fairness", description=__doc__)
    parser.add_argument("--slots", type=int, default=SLOTS)
    parser.add_argument("--flood", type=int, default=FLOOD)
    parser.add_argument("--b-jobs", type=int, default=B_JOBS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    part = measure(slots=args.slots, flood=args.flood, b_jobs=args.b_jobs)
    print(json.dumps(part, indent=2) if args.json else render(part))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
