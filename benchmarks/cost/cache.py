"""The result cache: what a hit costs and how fast it answers, against a miss, in the same run.

ONE in-process local stack in a child process (the callback path, emulator latency 0.2 s). Three
kinds of window, ``jobs`` jobs each in ``rounds`` rounds (so all three see the same machine load),
``in_flight`` at a time, each counted by the cost meter (everything the jobs caused, priced per image):

- ``off``: every image distinct and ``"cache": false``, the path without any cache bookkeeping;
- ``miss``: every image distinct, the cache on (its lookup and entry write included): each pays
  WaveSpeed, and its results are offered for reuse;
- ``hit``: the ``miss`` window's requests sent again: each is answered from the cache.

What the cache adds to a miss is ``miss - off``; a hit saves SAM3's $0.005 and costs ``hit``. Latency
is the 202 to the caller's verified webhook.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.cost import per_image
from benchmarks.cost.meter import CostMeter
from benchmarks.cost.prices import PRICES, SAM3_USD_PER_IMAGE
from benchmarks.cost.transitions import record_histories
from benchmarks.harness import Bench, run_part, running_bench, tagged_png
from benchmarks.latency.webhook import JobSample, set_path
from benchmarks.stats import percentile
from maskgate_local.demo.sample import scene_png

DEFAULT_JOBS = 20
DEFAULT_IN_FLIGHT = 1  # one at a time: the latencies are the stack's own, not its queueing
LATENCY_S = 0.2
WAIT_S = 60.0
WINDOWS = ("off", "miss", "hit")
DEFAULT_ROUNDS = 4
PER_JOB = ("transitions", "lambda_invocations", "dynamodb_wru", "dynamodb_rru", "s3_tier1", "s3_tier2")


def run_window(
    bench: Bench, meter: CostMeter, label: str, images: list[bytes], *, in_flight: int, cache: bool
) -> dict[str, Any]:
    """One counted window: these images, one job each; its figures per job, and its latencies."""
    run = uuid.uuid4().hex[:8]
    before = _submissions(bench)

    def one(index: int) -> JobSample:
        extra = {} if cache else {"cache": False}
        job_id, posted, accepted = bench.submit(
            {"bench": f"{run}-{label}-{index}"}, image=images[index], **extra
        )
        try:
            delivery = bench.receiver.wait_for(job_id, timeout=WAIT_S)
        except TimeoutError:
            return JobSample(job_id, posted, accepted, math.nan, "no webhook")
        status = str((delivery.payload or {})["data"]["status"])
        return JobSample(job_id, posted, accepted, delivery.received_at, status)

    meter.open(label)
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix=f"bench-cache-{label}") as pool:
        samples = list(pool.map(one, range(len(images))))
    window = meter.close(samples)
    record_histories(bench, samples)
    summary = per_image.summarise(window, [s.states for s in samples if s.succeeded], meter.context())
    counts = summary["counts"]
    return {
        "jobs": len(samples),
        "succeeded": sum(1 for s in samples if s.succeeded),
        "cache": [bench.job(s.job_id).get("cache") for s in samples],
        "wavespeed_submissions": _submissions(bench) - before,
        "usd_per_image": summary["total_usd"],
        "components": summary["components"],
        "per_job": {name: counts[name] for name in PER_JOB},
        "calls": summary["calls"],
        "states": [s.states for s in samples],
        "latencies_ms": [
            (s.received_at - s.accepted_at) * 1000 for s in samples if not math.isnan(s.received_at)
        ],
    }


def _submissions(bench: Bench) -> int:
    return int(bench.http.get(f"{bench.ready.wavespeed_url}/_emulator/stats").json()["submissions"])


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One label's windows over every round: figures per job weighted by jobs, latencies pooled."""
    jobs = sum(r["jobs"] for r in rounds)

    def mean(get: Any) -> float:
        return float(sum(get(r) * r["jobs"] for r in rounds) / max(1, jobs))

    outcomes = [str(c) for r in rounds for c in r["cache"]]
    latencies = [ms for r in rounds for ms in r["latencies_ms"]]
    usd = mean(lambda r: r["usd_per_image"])
    return {
        "jobs": jobs,
        "succeeded": sum(r["succeeded"] for r in rounds),
        "cache": {c: outcomes.count(c) for c in sorted(set(outcomes))},
        "wavespeed_submissions": sum(r["wavespeed_submissions"] for r in rounds),
        "usd_per_image": usd,
        "share": usd / SAM3_USD_PER_IMAGE,
        "components": {k: mean(lambda r, k=k: r["components"][k]) for k in rounds[0]["components"]},
        **{name: mean(lambda r, name=name: r["per_job"][name]) for name in PER_JOB},
        "calls": {
            k: mean(lambda r, k=k: r["calls"].get(k, 0.0))
            for k in sorted({k for r in rounds for k in r["calls"]})
        },
        "shapes": dict(Counter(" → ".join(s) for r in rounds for s in r["states"])),
        "accepted_to_webhook_p50_ms": percentile(latencies, 50),
        "accepted_to_webhook_p95_ms": percentile(latencies, 95),
    }


def measure(*, jobs: int, in_flight: int, rounds: int) -> dict[str, Any]:
    """``rounds`` rounds of (off, miss, hit) windows, ``jobs // rounds`` jobs each: the three see the
    same machine load (the callback wait can time out under load, adding Backoff → Poll)."""
    scene = scene_png()
    size = max(1, jobs // rounds)
    windows: dict[str, list[dict[str, Any]]] = {name: [] for name in WINDOWS}
    with contextlib.redirect_stdout(io.StringIO()), running_bench() as bench:
        with CostMeter(bench).installed() as meter:
            set_path(bench, "callback", LATENCY_S)
            for n in range(2):  # first invokes import handlers and build clients: not what is measured
                warm = tagged_png(scene, f"warmup-{uuid.uuid4().hex}")
                for label in ("miss", "hit"):
                    job_id, _, _ = bench.submit({"bench": f"cache-warmup-{label}-{n}"}, image=warm)
                    bench.receiver.wait_for(job_id, timeout=WAIT_S)
            for _ in range(rounds):
                distinct = [tagged_png(scene, f"cache-bench-{uuid.uuid4().hex}") for _ in range(2 * size)]
                off, fresh = distinct[:size], distinct[size:]
                windows["off"].append(run_window(bench, meter, "off", off, in_flight=in_flight, cache=False))
                windows["miss"].append(
                    run_window(bench, meter, "miss", fresh, in_flight=in_flight, cache=True)
                )
                windows["hit"].append(run_window(bench, meter, "hit", fresh, in_flight=in_flight, cache=True))
    combined = {name: combine(found) for name, found in windows.items()}
    prices = PRICES
    # the cache's own requests on a miss, as counted: one conditional PutItem of the entry (1 WRU, the
    # entry is in no index) and one eventually consistent GetItem of the tenant's cache_enabled (0.5 RRU)
    own = prices.dynamodb_wru * 1 + prices.dynamodb_rru * 0.5
    return {
        "jobs": size * rounds,
        "rounds": rounds,
        "in_flight": in_flight,
        "emulator_latency_s": LATENCY_S,
        "windows": combined,
        "miss_adds_usd": combined["miss"]["usd_per_image"] - combined["off"]["usd_per_image"],
        "miss_own_requests_usd": own,
        "hit_saves_usd": SAM3_USD_PER_IMAGE
        + combined["miss"]["usd_per_image"]
        - combined["hit"]["usd_per_image"],
    }


def render(report: dict[str, Any]) -> str:
    windows = report["windows"]
    lines = [
        f"result cache ({report['jobs']} jobs per window in {report['rounds']} rounds, "
        f"{report['in_flight']} in flight, emulator latency {report['emulator_latency_s']} s; "
        "off: cache false, miss: distinct images, hit: the same again)",
        f"  {'window':>6}  {'ok':>3}  {'cache':>14}  {'paid':>4}  {'USD/image':>10}  {'of SAM3':>7}"
        f"  {'states':>6}  {'invokes':>7}  {'WRU':>5}  {'RRU':>5}  {'S3 t1':>5}"
        f"  {'202→webhook p50':>15}  {'p95':>7}",
    ]
    for name in WINDOWS:
        w = windows[name]
        cache = ",".join(f"{k}:{v}" for k, v in w["cache"].items())
        lines.append(
            f"  {name:>6}  {w['succeeded']:>3}  {cache:>14}  {w['wavespeed_submissions']:>4}"
            f"  {w['usd_per_image']:>10.7f}  {w['share']:>6.2%}  {w['transitions']:>6.2f}"
            f"  {w['lambda_invocations']:>7.2f}  {w['dynamodb_wru']:>5.1f}  {w['dynamodb_rru']:>5.1f}"
            f"  {w['s3_tier1']:>5.1f}  {w['accepted_to_webhook_p50_ms']:>12.0f} ms"
            f"  {w['accepted_to_webhook_p95_ms']:>4.0f} ms"
        )
    for name in WINDOWS:
        shapes = ", ".join(f"{shape} ×{n}" for shape, n in windows[name]["shapes"].items())
        lines.append(f"  {name:>6} shapes: {shapes}")
    lines.append(
        f"  miss - off: {report['miss_adds_usd']:.7f} USD "
        f"({report['miss_adds_usd'] / SAM3_USD_PER_IMAGE:.2%} of SAM3's price); "
        f"the cache's own requests on a miss: {report['miss_own_requests_usd']:.7f} USD "
        f"({report['miss_own_requests_usd'] / SAM3_USD_PER_IMAGE:.3%}); a hit costs "
        f"{windows['hit']['usd_per_image']:.7f} USD and saves {report['hit_saves_usd']:.7f} USD"
    )
    return "\n".join(lines)


def run(
    *, jobs: int = DEFAULT_JOBS, in_flight: int = DEFAULT_IN_FLIGHT, rounds: int = DEFAULT_ROUNDS
) -> dict[str, Any]:
    """Run the part in a fresh child (the in-process stack sets os.environ and patches moto)."""
    args = ["--jobs", str(jobs), "--in-flight", str(in_flight), "--rounds", str(rounds)]
    return run_part("benchmarks.cost.cache", args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cost.cache", description=__doc__)
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="jobs per window")
    parser.add_argument("--in-flight", type=int, default=DEFAULT_IN_FLIGHT, help="jobs at a time")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="rounds of the three windows")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    report = measure(jobs=args.jobs, in_flight=args.in_flight, rounds=args.rounds)
    print(render(report), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
