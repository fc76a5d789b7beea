"""The cost part of the report as text: per component and path, the workflow options, per function."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from benchmarks.cost.per_image import ALTERNATIVES, MEMORY_SIZES
from benchmarks.cost.prices import (
    BUDGET_SHARE,
    PRICES,
    PRICES_CHECKED,
    REGION,
    SAM3_USD_PER_IMAGE,
    SOURCES,
)

PATHS = ("callback", "poll")
COUNTED = 42  # width of the "counted per job" column


def price_table() -> dict[str, Any]:
    """The prices used, with the date they were checked and their sources (for the JSON report)."""
    sources = {service: f"{page} ({what})" for service, page, what in SOURCES}
    return {"checked": PRICES_CHECKED, "region": REGION, "usd": asdict(PRICES), "sources": sources}


def render(cost: Mapping[str, Any]) -> str:
    """Components per path, total against the budget, workflow options, functions, memory, notes."""
    paths = {path: cost["paths"][path] for path in PATHS if path in cost["paths"]}
    if not paths:
        return "  cost per image: no window was counted"
    budget = SAM3_USD_PER_IMAGE * BUDGET_SHARE
    jobs = ", ".join(f"{path} {figures['jobs']}" for path, figures in paths.items())
    lines = [
        f"  cost per image at list prices ({REGION}, on demand, no free tier; prices of {PRICES_CHECKED}),"
        f" share of SAM3's ${SAM3_USD_PER_IMAGE}",
        f"  budget {BUDGET_SHARE:.0%} = ${budget:.4f}; everything the jobs caused on the local stack, per job"
        f" (jobs: {jobs})",
        f"  {'component':<33} {'counted per job: callback | poll':<{COUNTED}}"
        + "".join(f" {path:>17}" for path in paths),
    ]
    for component in next(iter(paths.values()))["components"]:
        counted = " | ".join(_counted(component, figures) for figures in paths.values())
        cells = "".join(_money(figures["components"][component]) for figures in paths.values())
        lines.append(f"  {component:<33} {counted:<{COUNTED}}{cells}")
    verdicts = " | ".join("within" if f["share"] <= BUDGET_SHARE else "OVER" for f in paths.values())
    totals = "".join(_money(figures["total_usd"]) for figures in paths.values())
    lines += [
        f"  {'total':<33} {'budget ' + format(BUDGET_SHARE, '.0%') + ': ' + verdicts:<{COUNTED}}{totals}"
    ]
    image_bytes = next(iter(paths.values()))["counts"].get("input_image_bytes", 0.0)
    lines += [*_per_megabyte(cost.get("per_image_mb"), image_bytes), ""]
    lines += [*_alternatives(paths), "", *_functions(cost, paths), *_memory(paths), ""]
    lines += _detail(paths) + _notes()
    return "\n".join(lines)


def _per_megabyte(per_mb: Mapping[str, float] | None, image_bytes: float) -> list[str]:
    if not per_mb:
        return []
    usd = per_mb["transfer_out_usd"] + per_mb["storage_usd"]
    text = (
        f"each MB of input image adds ${usd:.7f} ({usd / SAM3_USD_PER_IMAGE:.2%}; the sample image is"
        f" {image_bytes / 1024:.1f} KB): WaveSpeed's presigned GET ${per_mb['transfer_out_usd']:.7f} (data"
        f" transfer out), {per_mb['storage_days']:.0f} days in S3 ${per_mb['storage_usd']:.7f}; sent"
        f" inline as a data URI, +${per_mb['inline_api_usd']:.7f} of HTTP API requests"
    )
    return textwrap.wrap(text, width=106, initial_indent="  ", subsequent_indent="    ")


def _money(usd: float) -> str:
    return f" ${usd:.7f} {usd / SAM3_USD_PER_IMAGE:>6.2%}"


def _counted(component: str, figures: Mapping[str, Any]) -> str:
    c = figures["counts"]
    by_component = {
        "Step Functions transitions": f"{c['transitions']:.2f}",
        "Lambda requests": f"{c['lambda_invocations']:.2f} invokes",
        "Lambda duration (GB-s)": f"{sum(f['gb_s_per_job'] for f in figures['functions'].values()):.4f} GB-s",
        "DynamoDB writes (WRU)": f"{c['dynamodb_wru']:.1f} WRU",
        "DynamoDB reads (RRU)": f"{c['dynamodb_rru']:.1f} RRU",
        "DynamoDB storage + PITR": _kb(c["dynamodb_stored_bytes"]),
        "S3 storage": _kb(c["s3_stored_bytes"]),
        "S3 requests": f"{c['s3_tier1']:.1f} PUT+{c['s3_tier2']:.1f} GET",
        "API Gateway (HTTP API)": f"{c['api_requests']:.2f} req",
        "SQS": f"{c['sqs_requests']:.2f} req",
        "Secrets Manager": f"{figures['calls'].get('secretsmanager.GetSecretValue', 0.0):.2f} calls",
        "CloudWatch Logs (part estimated)": (
            f"{_kb(c['log_bytes_measured'])}+{_kb(c['log_bytes_estimated'])} e"
        ),
        "Data transfer out": _kb(c["transfer_out_bytes"]),
    }
    return by_component.get(component, "")


def _kb(size: float) -> str:
    return f"{size / 1024:.1f} KB"


def _alternatives(paths: Mapping[str, Mapping[str, Any]]) -> list[str]:
    header = "".join(f" {path + ': transitions, share':>27}" for path in paths)
    lines = [f"  {'workflow options (modelled from the same counts)':<56}{header}"]
    rows = [
        ("Standard as built (measured)", [(f["counts"]["transitions"], f["share"]) for f in paths.values()])
    ]
    for alt in ALTERNATIVES:
        cells = [figures["alternatives"][alt.name] for figures in paths.values()]
        rows.append((alt.name, [(cell["transitions"], cell["share"]) for cell in cells]))
    for name, cells in rows:
        line = "".join(
            f" {transitions:>12.2f} {share:>7.2%} {'ok' if share <= BUDGET_SHARE else 'OVER':>5}"
            for transitions, share in cells
        )
        lines.append(f"  {name:<56}{line}")
    return lines


def _functions(cost: Mapping[str, Any], paths: Mapping[str, Mapping[str, Any]]) -> list[str]:
    serial = cost.get("serial_p50_ms", {})
    rss = cost.get("rss_mb", {})
    names = sorted({name for figures in paths.values() for name in figures["functions"]})
    lines = [
        f"  {'function':<10} {'invokes/job':>12} {'p50 billed ms':>14} {'1 in flight':>11} {'p50 CPU ms':>11}"
        f" {'memory':>7} {'GB-s/job':>16} {'RSS':>7}",
        f"  {'':<10} {'cb | poll':>12} {'cb | poll':>14} {'cb':>11} {'cb | poll':>11} {'MB':>7}"
        f" {'cb | poll':>16} {'MB':>7}",
    ]
    for name in names:
        rows = [figures["functions"].get(name) for figures in paths.values()]
        present = [row for row in rows if row is not None]
        invocations, billed = _pair(rows, "invocations_per_job", ".2f"), _pair(rows, "p50_billed_ms", ".0f")
        cpu, gbs = _pair(rows, "p50_cpu_ms", ".0f"), _pair(rows, "gb_s_per_job", ".4f")
        lines.append(
            f"  {name:<10} {invocations:>12} {billed:>14} {_num(serial.get(name), '.0f'):>11} {cpu:>11}"
            f" {present[0]['memory_mb']:>7} {gbs:>16} {_num(rss.get(name), '.0f'):>7}"
        )
    lines += _instances(paths, cost["paths"].get("callback_masks_only"))
    return lines


def _instances(paths: Mapping[str, Mapping[str, Any]], masks_only: Mapping[str, Any] | None) -> list[str]:
    """Store's instances step on its own (already inside Store's GB-s and the total), and the callback
    path asking for masks only, in the same run: what instances and the COCO file add in all."""
    shares = [(path, figures["instances"]) for path, figures in paths.items() if "instances" in figures]
    if not shares:
        return []
    extra = []
    if masks_only is not None and "callback" in paths:
        full = paths["callback"]
        added = full["total_usd"] - masks_only["total_usd"]
        puts = full["counts"]["s3_tier1"] - masks_only["counts"]["s3_tier1"]
        extra = textwrap.wrap(
            f'callback path with outputs ["masks"] ({masks_only["jobs"]} jobs, same run): total'
            f" ${masks_only['total_usd']:.7f} ({masks_only['share']:.2%}); instances and the COCO file add"
            f" ${added:.7f} ({added / SAM3_USD_PER_IMAGE:+.2%}), of it {puts:.1f} S3 PUT per image"
            f" ({puts * PRICES.s3_tier1_request / SAM3_USD_PER_IMAGE:.2%})",
            width=106,
            initial_indent="  ",
            subsequent_indent="    ",
        )
    cells = " | ".join(
        f"{path} p50 {f['p50_ms']:.1f} ms, {f['gb_s_per_job']:.5f} GB-s,"
        f" ${f['usd_per_job']:.8f} ({f['share']:.3%})"
        for path, f in shares
    )
    step = textwrap.wrap(
        f"of which Store's instances step (decode, components, RLE, polygons, the two result files): {cells}",
        width=106,
        initial_indent="  ",
        subsequent_indent="    ",
    )
    return step + extra


def _pair(rows: list[Mapping[str, Any] | None], key: str, spec: str) -> str:
    return " | ".join("-" if row is None else _num(row[key], spec) for row in rows)


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


def _memory(paths: Mapping[str, Mapping[str, Any]]) -> list[str]:
    sizes = " / ".join(str(m) for m in MEMORY_SIZES)
    lines = [f"  every function at {sizes} MB, total share of $0.005:"]
    for path, figures in paths.items():
        for kind, label in (
            ("measured_duration", "durations as measured"),
            ("cpu_scaled", "CPU part scaled"),
        ):
            totals = figures["memory"][kind]
            shares = " / ".join(f"{totals[str(m)] / SAM3_USD_PER_IMAGE:.3%}" for m in MEMORY_SIZES)
            lines.append(f"    {path:<9} {label:<22} {shares}")
    return lines


def _detail(paths: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = []
    for path, figures in paths.items():
        writes = ", ".join(f"{op} {units:.1f}" for op, units in figures["dynamodb_wru"].items() if units)
        reads = ", ".join(f"{op} {units:.1f}" for op, units in figures["dynamodb_rru"].items() if units)
        calls = ", ".join(f"{name} {n:.2f}" for name, n in figures["calls"].items())
        routes = ", ".join(f"{route} {n:.2f}" for route, n in figures["routes"].items())
        failed = figures["counts"]["dynamodb_failed_conditions"]
        text = (
            f"{path}, per job: AWS calls {calls}; WRU {writes}; RRU {reads}; failed conditional writes"
            f" {failed:.2f}; API requests {routes}"
        )
        starts = figures["counts"]["state_machine_starts"]
        if len(starts) > 1 or figures["dynamodb_unsized"] or not figures["settled"]:
            text += (
                f"; executions started {starts} (only the job's own transitions are counted); DynamoDB"
                f" calls not sized {figures['dynamodb_unsized']}; stack idle at the end {figures['settled']}"
            )
        lines += textwrap.wrap(text, width=106, initial_indent="  ", subsequent_indent="    ")
    return lines


def _notes() -> list[str]:
    return [
        "  counted: transitions = *StateEntered events in each execution's history; Lambda = every",
        "  in-process invoke, its wall time rounded up to 1 ms x the function's MemorySize from the",
        "  translated template (jobs in flight share one Python process: queueing for the GIL makes these",
        "  upper bounds; '1 in flight' is the serial callback run); DynamoDB = each request at the moto",
        "  boundary, units from the item before and after (failed conditional writes and GSI writes",
        "  included); S3 by price class, WaveSpeed's presigned GETs included; storage for the lifecycle or",
        "  TTL lifetime. Estimated (e): Lambda's START/END/REPORT lines, the API access-log line. Not",
        "  counted: requests from Lambda to WaveSpeed (a few hundred bytes out), cold starts (INIT is billed",
        "  since 1 Aug 2025; the stack is warm), EMF metrics (off on the local stack), free tiers. RSS =",
        "  peak resident memory, handler imported and boto3 clients built, fresh Python 3.11 (Lambda's",
        "  runtime adds some MB). Options are modelled: the same counts, minus the states and invocations",
        "  that shape would not run.",
    ]
