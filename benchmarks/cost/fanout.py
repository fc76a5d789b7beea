"""Fan-out to registered webhook endpoints: what each extra endpoint costs per image, and how long a
job's event takes to reach all of them.

ONE in-process local stack in a child process (the callback path, emulator latency 0.2 s). For each
level (0, 1, 3 and 10 endpoints, each a verifying receiver of its own on loopback), ``jobs`` jobs run
with ``in_flight`` at a time, counted by the cost meter in a window of their own: everything they
caused, priced per image. Every endpoint answers 204, so every first attempt succeeds: the fan-out
should add no state transition, only the first attempts' invocation time, the attempt-log writes and
the bytes sent. The latency is from the 202 to the last of the job's webhooks (its own and every
endpoint's).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.cost import per_image
from benchmarks.cost.meter import CostMeter
from benchmarks.cost.transitions import record_histories
from benchmarks.harness import Bench, run_part, running_bench
from benchmarks.latency.webhook import JobSample, set_path
from benchmarks.stats import percentile
from maskgate_local.demo.receiver import WebhookReceiver
from maskgate_local.stack.servers import RunningServer, serve_in_thread

DEFAULT_LEVELS = (0, 1, 3, 10)
DEFAULT_JOBS = 20
DEFAULT_IN_FLIGHT = 4
LATENCY_S = 0.2
WAIT_S = 60.0


def parse_levels(value: str) -> tuple[int, ...]:
    """``"0,1,3,10"`` → (0, 1, 3, 10): endpoint counts, each 0 to 20 (a tenant's most)."""
    levels = tuple(int(n) for n in value.split(",") if n.strip())
    if not levels or any(not 0 <= n <= 20 for n in levels):
        raise ValueError(f"levels are endpoint counts from 0 to 20, comma-separated, not {value!r}")
    return levels


def _endpoints(bench: Bench, count: int) -> tuple[list[WebhookReceiver], list[RunningServer], list[str]]:
    """``count`` registered endpoints, each a verifying receiver of its own."""
    receivers, servers, ids = [], [], []
    headers = {"Authorization": f"Bearer {bench.ready.api_key}"}
    for n in range(count):
        placeholder = WebhookReceiver(secret="whsec_" + "A" * 44)
        server = serve_in_thread(placeholder)
        response = bench.http.post(
            f"{bench.ready.api_url}/v1/webhook-endpoints",
            json={"url": f"{server.url}/bench-endpoint-{n}", "description": f"fan-out benchmark {n}"},
            headers=headers,
        )
        response.raise_for_status()
        created = response.json()
        placeholder.secret = created["secret"]  # verified with the endpoint's own secret from now on
        receivers.append(placeholder)
        servers.append(server)
        ids.append(created["id"])
    return receivers, servers, ids


def _remove(bench: Bench, ids: list[str], servers: list[RunningServer]) -> None:
    headers = {"Authorization": f"Bearer {bench.ready.api_key}"}
    for endpoint_id in ids:
        bench.http.delete(f"{bench.ready.api_url}/v1/webhook-endpoints/{endpoint_id}", headers=headers)
    for server in servers:
        server.stop()


def run_level(bench: Bench, meter: CostMeter, *, endpoints: int, jobs: int, in_flight: int) -> dict[str, Any]:
    receivers, servers, ids = _endpoints(bench, endpoints)
    run = uuid.uuid4().hex[:8]
    label = f"fanout_{endpoints}"

    def one(index: int) -> tuple[JobSample, float]:
        job_id, posted, accepted = bench.submit({"bench": f"{run}-{label}-{index}"})
        try:
            own = bench.receiver.wait_for(job_id, timeout=WAIT_S)
            last = max(
                [own.received_at] + [r.wait_for(job_id, timeout=WAIT_S).received_at for r in receivers]
            )
        except TimeoutError:
            return JobSample(job_id, posted, accepted, math.nan, "no webhook"), math.nan
        status = str((own.payload or {})["data"]["status"])
        return JobSample(job_id, posted, accepted, own.received_at, status), last

    try:
        meter.open(label)
        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="bench-fanout") as pool:
            results = list(pool.map(one, range(jobs)))
        samples = [sample for sample, _ in results]
        window = meter.close(samples)
        ids_done = {s.job_id for s in samples}
        endpoint_bytes = sum(
            len(d.body)
            for r in receivers
            for d in r.deliveries
            if d.payload is not None and d.payload["data"]["id"] in ids_done
        )
        window = replace(window, webhook_bytes=window.webhook_bytes + endpoint_bytes)
        meter.windows[label] = window
        record_histories(bench, samples)
        states = [s.states for s in samples if s.succeeded]
        summary = per_image.summarise(window, states, meter.context())
        deliveries = sum(len(r.deliveries) for r in receivers)
        verified = sum(1 for r in receivers for d in r.deliveries if d.verified)
    finally:
        _remove(bench, ids, servers)
    latencies = [(last - s.accepted_at) * 1000 for s, last in results if not math.isnan(last)]
    return {
        "endpoints": endpoints,
        "jobs": jobs,
        "succeeded": sum(1 for s in samples if s.status == "succeeded"),
        "endpoint_deliveries": deliveries,
        "endpoint_deliveries_verified": verified,
        "usd_per_image": summary["total_usd"],
        "components": summary["components"],
        "transitions": summary["counts"]["transitions"],
        "state_machine_starts": summary["counts"]["state_machine_starts"],
        "lambda_invocations": summary["counts"]["lambda_invocations"],
        "dynamodb_wru": summary["counts"]["dynamodb_wru"],
        "accepted_to_all_webhooks_p50_ms": percentile(latencies, 50),
        "accepted_to_all_webhooks_p95_ms": percentile(latencies, 95),
    }


def measure(*, levels: Sequence[int], jobs: int, in_flight: int) -> dict[str, Any]:
    with contextlib.redirect_stdout(io.StringIO()), running_bench() as bench:
        with CostMeter(bench).installed() as meter:
            set_path(bench, "callback", LATENCY_S)
            for n in range(2):  # first invokes import handlers and build clients: not what is measured
                job_id, _, _ = bench.submit({"bench": f"fanout-warmup-{n}"})
                bench.receiver.wait_for(job_id, timeout=WAIT_S)
            results = [run_level(bench, meter, endpoints=n, jobs=jobs, in_flight=in_flight) for n in levels]
    base = next((r for r in results if r["endpoints"] == 0), None)
    for result in results:
        extra = result["endpoints"]
        if base is not None and extra:
            result["usd_per_extra_endpoint"] = (result["usd_per_image"] - base["usd_per_image"]) / extra
    return {"jobs": jobs, "in_flight": in_flight, "emulator_latency_s": LATENCY_S, "levels": results}


def render(report: dict[str, Any]) -> str:
    lines = [
        f"fan-out to registered endpoints ({report['jobs']} jobs per level, {report['in_flight']} in flight; "
        "every endpoint answers 204)",
        f"  {'endpoints':>9}  {'ok':>4}  {'verified':>8}  {'USD/image':>10}  {'per extra':>10}"
        f"  {'transitions':>11}  {'units':>5}  {'202→all p50':>12}  {'p95':>7}",
    ]
    for level in report["levels"]:
        per_extra = level.get("usd_per_extra_endpoint")
        units = level["state_machine_starts"]
        lines.append(
            f"  {level['endpoints']:>9}  {level['succeeded']:>4}  {level['endpoint_deliveries_verified']:>8}"
            f"  {level['usd_per_image']:>10.7f}  {'—' if per_extra is None else f'{per_extra:.7f}':>10}"
            f"  {level['transitions']:>11.2f}  {sum(v for k, v in units.items() if 'delivery' in k):>5}"
            f"  {level['accepted_to_all_webhooks_p50_ms']:>9.0f} ms"
            f"  {level['accepted_to_all_webhooks_p95_ms']:>4.0f} ms"
        )
    return "\n".join(lines)


def run(
    *, levels: Sequence[int] = DEFAULT_LEVELS, jobs: int = DEFAULT_JOBS, in_flight: int = DEFAULT_IN_FLIGHT
) -> dict[str, Any]:
    """Run the part in a fresh child (the in-process stack sets os.environ and patches moto)."""
    args = ["--levels", ",".join(map(str, levels))]
    args += ["--jobs", str(jobs), "--in-flight", str(in_flight)]
    return run_part("benchmarks.cost.fanout", args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cost.fanout", description=__doc__)
    parser.add_argument("--levels", default=",".join(map(str, DEFAULT_LEVELS)), help="endpoint counts")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="jobs per level")
    parser.add_argument("--in-flight", type=int, default=DEFAULT_IN_FLIGHT, help="jobs at a time")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    report = measure(levels=parse_levels(args.levels), jobs=args.jobs, in_flight=args.in_flight)
    print(render(report), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
