"""Turn the samples of one run into a report (a dict of figures) and print it as a compact table."""

from __future__ import annotations

import math
import os
import platform
from datetime import UTC, datetime
from typing import Any

from benchmarks.cost import table as cost_table
from benchmarks.cost.transitions import SAM3_USD_PER_IMAGE, USD_PER_TRANSITION, summarise
from benchmarks.latency.webhook import JobSample
from benchmarks.startup import coldstart, instances, layer, overhead
from benchmarks.stats import ratio, summary_ms

REPORT_KEYS = (
    "header",
    "jobs",
    "callback_sent_to_webhook",
    "completed_to_webhook",
    "completed_to_callback_sent",
    "poll_over_callback",
    "post_to_accepted",
    "accepted_to_webhook",
    "maskgate_adds",
    "emulator_inference",
    "serial_callback",
    "transitions",
    "cost",
)


# Issue 6's parts, each under its own key when it ran (python -m benchmarks --only ...).
PART_KEYS = ("coldstart", "layer", "overhead", "instances")
RENDERERS = {
    "coldstart": coldstart.render,
    "layer": layer.render,
    "overhead": overhead.render,
    "instances": instances.render,
}


def machine_header() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def header(
    *, jobs: int, poll_jobs: int, concurrency: int, warmup: int, serial_jobs: int, latency_s: float
) -> dict[str, Any]:
    return {
        **machine_header(),
        "callback_jobs": jobs,
        "poll_jobs": poll_jobs,
        "concurrency": concurrency,
        "warmup_jobs_per_path": warmup,
        "serial_callback_jobs": serial_jobs,
        "emulator_latency_s": latency_s,
    }


def build(head: dict[str, Any], results: dict[str, list[JobSample]], latency_s: float) -> dict[str, Any]:
    ok = {path: [s for s in samples if s.succeeded] for path, samples in results.items()}
    callback, poll, serial = ok["callback"], ok["poll"], ok.get("callback_serial", [])

    def completed_to_webhook(samples: list[JobSample]) -> dict[str, float]:
        return summary_ms([s.received_at - s.completed_at for s in samples if s.completed_at is not None])

    by_path = {"callback": completed_to_webhook(callback), "poll": completed_to_webhook(poll)}
    return {
        "header": head,
        "jobs": {
            path: {
                "submitted": len(samples),
                "succeeded": len(ok[path]),
                "callbacks_sent": sum(s.callback_sent_at is not None for s in samples),
            }
            for path, samples in results.items()
        },
        "callback_sent_to_webhook": summary_ms(
            [s.received_at - s.callback_sent_at for s in callback if s.callback_sent_at is not None]
        ),
        "completed_to_webhook": by_path,
        "completed_to_callback_sent": summary_ms(
            [
                s.callback_sent_at - s.completed_at
                for s in callback
                if s.callback_sent_at is not None and s.completed_at is not None
            ]
        ),
        "poll_over_callback": {
            "p50": ratio(by_path["poll"]["p50_ms"], by_path["callback"]["p50_ms"]),
            "p95": ratio(by_path["poll"]["p95_ms"], by_path["callback"]["p95_ms"]),
        },
        "post_to_accepted": summary_ms([s.accepted_at - s.posted_at for s in callback]),
        "accepted_to_webhook": summary_ms([s.received_at - s.accepted_at for s in callback]),
        "maskgate_adds": summary_ms([s.received_at - s.accepted_at - latency_s for s in callback]),
        "emulator_inference": summary_ms([s.inference_ms / 1000 for s in callback if s.inference_ms]),
        "serial_callback": {
            "callback_sent_to_webhook": summary_ms(
                [s.received_at - s.callback_sent_at for s in serial if s.callback_sent_at is not None]
            ),
            "maskgate_adds": summary_ms([s.received_at - s.accepted_at - latency_s for s in serial]),
        },
        "transitions": {"callback": summarise(callback), "poll": summarise(poll)},
    }


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}"


def _row(label: str, figures: dict[str, float]) -> str:
    return (
        f"  {label:<58} {figures['n']:>4} {_ms(figures['p50_ms']):>7} "
        f"{_ms(figures['p95_ms']):>7} {_ms(figures['max_ms']):>7}"
    )


def _transitions_row(path: str, t: dict[str, Any]) -> str:
    if not t.get("jobs"):
        return f"  {path:<9} no successful job"
    spread = f"{t['state_entries_min']}-{t['state_entries_max']}"
    return (
        f"  {path:<9} {t['state_entries_mean']:>7.2f} {spread:>7} {t['history_events_mean']:>7.1f}"
        f"  ${t['cost_usd_per_job']:.6f} {t['share_of_sam3_price']:>7.2%}   {t['commonest_path']}"
        f" ({t['commonest_path_jobs']}/{t['jobs']})"
    )


def _states_line(path: str, t: dict[str, Any]) -> str:
    spent = ", ".join(f"{name} {_ms(ms)}" for name, ms in t.get("state_ms_p50", {}).items())
    return f"  {path:<9} p50 ms in each state: {spent}"


def render(report: dict[str, Any], *, wall_s: float | None) -> str:
    """The local-stack part (and its wall time when given)."""
    h, jobs, serial = report["header"], report["jobs"], report["serial_callback"]
    latency_ms = h["emulator_latency_s"] * 1000
    ratios = report["poll_over_callback"]
    in_flight = f"{h['concurrency']} in flight"
    gap = _ms(report["completed_to_callback_sent"]["p50_ms"])
    lines = [
        f"maskgate benchmarks  {h['date']}  {h['machine']}  {h['cpus']} CPUs  Python {h['python']}",
        f"  one in-process local stack (moto, Lambdas, emulators, caller: one Python process); "
        f"{h['callback_jobs']} callback-path and {h['poll_jobs']} poll-only jobs at {in_flight}",
        f"  + {h['serial_callback_jobs']} callback-path jobs 1 in flight; {h['warmup_jobs_per_path']} "
        f"uncounted warm-up job(s) per path; emulator latency fixed at {latency_ms:.0f} ms",
        "  jobs succeeded: "
        + ", ".join(f"{path} {j['succeeded']}/{j['submitted']}" for path, j in jobs.items())
        + f"; callbacks sent on the poll path: {jobs['poll']['callbacks_sent']}",
        "",
        f"  {'latency, ms (wall clock)':<58} {'n':>4} {'p50':>7} {'p95':>7} {'max':>7}",
        _row(
            f"callback sent -> caller webhook   [callback, {in_flight}]", report["callback_sent_to_webhook"]
        ),
        _row(
            f"completed -> caller webhook       [callback, {in_flight}]",
            report["completed_to_webhook"]["callback"],
        ),
        _row(
            f"completed -> caller webhook       [poll, {in_flight}]", report["completed_to_webhook"]["poll"]
        ),
        f"  {'  ratio poll / callback (same interval, same run)':<58} {'':>4} "
        f"{ratios['p50']:>6.2f}x {ratios['p95']:>6.2f}x",
        _row(f"POST /v1/segmentations -> 202     [callback, {in_flight}]", report["post_to_accepted"]),
        _row(f"202 -> caller webhook             [callback, {in_flight}]", report["accepted_to_webhook"]),
        _row(f"  minus emulator {latency_ms:.0f} ms = maskgate adds", report["maskgate_adds"]),
        _row("emulator inference (its record)   [callback]", report["emulator_inference"]),
        _row("callback sent -> caller webhook   [callback, 1 in flight]", serial["callback_sent_to_webhook"]),
        _row(
            f"202 -> webhook minus {latency_ms:.0f} ms       [callback, 1 in flight]",
            serial["maskgate_adds"],
        ),
        "",
        f"  state transitions per successful job (Standard: ${USD_PER_TRANSITION * 1000:.3f} per 1,000; "
        f"share of SAM3's ${SAM3_USD_PER_IMAGE})",
        f"  {'path':<9} {'entries':>7} {'min-max':>7} {'events':>7}  {'cost/job':<9} {'share':>7}   "
        "commonest sequence of states",
        _transitions_row("callback", report["transitions"]["callback"]),
        _transitions_row("poll", report["transitions"]["poll"]),
        _states_line("callback", report["transitions"]["callback"]),
        _states_line("poll", report["transitions"]["poll"]),
        "",
        "  measured: 'callback sent' = the emulator starting its signed POST to maskgate (a tap on its",
        "  post_callback); 'completed' = the emulator record's created_at + timings.inference, read",
        "  in-process (never later than the truth, so intervals from it are upper bounds; on the",
        f"  callback path it precedes 'callback sent' by p50 {gap} ms); 'caller webhook' =",
        "  WebhookReceiver.received_at, stamped once standardwebhooks verified it. entries = *StateEntered",
        "  events in get_execution_history (what AWS bills), events = every history event. Poll path:",
        "  emulator fault drop_callback 1.0, so Submit's wait times out into Backoff > Poll",
        "  (local PollInitialSeconds 1 s).",
    ]
    if report.get("stack_stdout_lines"):
        lines.append(
            f"  ({report['stack_stdout_lines']} line(s) the in-process stack printed to stdout were left out:"
            " Powertools EMF metric sets)"
        )
    if wall_s is not None:
        lines.append(f"  wall time {wall_s:.1f} s")
    return "\n".join(lines)


def render_all(report: dict[str, Any], *, wall_s: float) -> str:
    """Every part that ran, then the wall time (with each part's)."""
    if "callback_sent_to_webhook" in report:
        sections = [render(report, wall_s=None)]
        if "cost" in report:
            sections.append(cost_table.render(report["cost"]))
    else:
        h = report["header"]
        title = f"maskgate benchmarks  {h['date']}  {h['machine']}  {h['cpus']} CPUs  Python {h['python']}"
        sections = [title]
    sections += [RENDERERS[part](report[part]) for part in PART_KEYS if part in report]
    parts = ", ".join(f"{part} {seconds:.0f} s" for part, seconds in report.get("part_wall_s", {}).items())
    return "\n\n".join(sections) + f"\n  wall time {wall_s:.1f} s" + (f" ({parts})" if parts else "")
