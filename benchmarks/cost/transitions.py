"""Figure 3: state transitions per successful job, read from Step Functions' execution history, and
what they cost on a Standard workflow."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from benchmarks.cost.prices import BUDGET_SHARE, PRICES, SAM3_USD_PER_IMAGE
from benchmarks.harness import Bench
from benchmarks.latency.webhook import JobSample
from benchmarks.stats import percentile

# Standard workflows bill per state transition: every state entered, retries included (AWS pricing).
# So the billable count is the number of ``*StateEntered`` events in the history.
USD_PER_TRANSITION = PRICES.sfn_transition
EXECUTION_TIMEOUT_S = 60.0
__all__ = [  # the prices come from benchmarks.cost.prices; report.py reads them here
    "BUDGET_SHARE",
    "EXECUTION_TIMEOUT_S",
    "SAM3_USD_PER_IMAGE",
    "USD_PER_TRANSITION",
    "history",
    "record_histories",
    "state_seconds",
    "summarise",
]


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of a finished execution (waits up to a minute for it to leave RUNNING)."""
    deadline = time.monotonic() + EXECUTION_TIMEOUT_S
    while sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING":
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


def record_histories(bench: Bench, samples: list[JobSample]) -> None:
    sfn = bench.sfn()
    for sample in samples:
        events = history(sfn, bench.execution_arn(sample.job_id))
        sample.history_events = len(events)
        sample.states = [
            e["stateEnteredEventDetails"]["name"] for e in events if str(e["type"]).endswith("StateEntered")
        ]
        sample.state_seconds = state_seconds(events)


def state_seconds(events: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds spent in each state (entered -> exited, summed over repeats), from the history timestamps."""
    entered: dict[str, float] = {}
    spent: dict[str, float] = {}
    for event in events:
        if "stateEnteredEventDetails" in event:
            entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"].timestamp()
        elif "stateExitedEventDetails" in event:
            name = event["stateExitedEventDetails"]["name"]
            if name in entered:
                spent[name] = spent.get(name, 0.0) + event["timestamp"].timestamp() - entered.pop(name)
    return spent


def summarise(samples: list[JobSample]) -> dict[str, Any]:
    ok = [s for s in samples if s.succeeded and s.states]
    if not ok:
        return {"jobs": 0}
    entries = [len(s.states) for s in ok]
    mean_entries = sum(entries) / len(entries)
    cost = mean_entries * USD_PER_TRANSITION
    paths = Counter(" > ".join(s.states) for s in ok)
    names = list(dict.fromkeys(name for s in ok for name in s.states))
    state_ms_p50 = {
        name: percentile([s.state_seconds[name] * 1000 for s in ok if name in s.state_seconds], 50)
        for name in names
    }
    return {
        "jobs": len(ok),
        "state_entries_mean": mean_entries,
        "state_entries_min": min(entries),
        "state_entries_max": max(entries),
        "history_events_mean": sum(s.history_events for s in ok) / len(ok),
        "commonest_path": paths.most_common(1)[0][0],
        "commonest_path_jobs": paths.most_common(1)[0][1],
        "cost_usd_per_job": cost,
        "share_of_sam3_price": cost / SAM3_USD_PER_IMAGE,
        "share_budget": BUDGET_SHARE,
        "state_ms_p50": state_ms_p50,
    }
