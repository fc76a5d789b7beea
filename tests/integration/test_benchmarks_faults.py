"""The fault run's CI variant: ``python -m benchmarks --only faults --fault-check`` with 120 jobs under every
WaveSpeed emulator fault, every crash point (rates 0.2-0.3), hostile webhook receivers (slow, trickling,
down now and then, 410, failing), duplicate S3 events and API retries, on one local stack. It must hold
every invariant: all jobs terminal, none lost, at most one WaveSpeed submission per job, no paid result
thrown away, exactly one final webhook-id per job, no admission slot held, no delivery lost. The
1,000-job figures are the README's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_benchmarks_smoke import run_benchmarks

BUDGET_KEYS = {
    "terminal",
    "terminal_pct",
    "lost",
    "duplicate_submissions",
    "most_submissions_for_one_job",
    "paid_results_lost",
    "images_submitted_twice",
    "duplicate_jobs",
    "duplicate_executions",
    "admission_slots_held_at_end",
}
JOBS = 120


@pytest.mark.timeout(900)
def test_fault_run_holds_every_invariant_under_faults_crashes_and_hostile_receivers(tmp_path: Path) -> None:
    # the part runs the stack in a child process of the benchmark's own; --fault-check exits 1 on a breach
    stdout, report = run_benchmarks(
        tmp_path,
        "--only",
        "faults",
        "--fault-jobs",
        str(JOBS),
        "--fault-concurrency",
        "16",
        "--fault-deadline",
        "30",  # a loaded CI machine tests the invariants, not its own speed (see the README)
        "--fault-check",
        timeout=840,
    )

    faults = report["faults"]
    assert "budget: every invariant held" in stdout, stdout[-6000:]
    assert report["parts"] == ["faults"]
    assert faults["jobs"] == JOBS and faults["accepted"] == JOBS and faults["refused"] == 0
    assert faults["parameters"]["JobDeadlineSeconds"] == "30"
    assert BUDGET_KEYS <= set(faults) and all(isinstance(faults[k], int | float) for k in BUDGET_KEYS)
    assert sum(faults["ways_in"].values()) == JOBS
    assert faults["most_submissions_for_one_job"] == 1
    assert faults["webhooks"]["final_events_per_job"] == {"1": JOBS}
    assert faults["deliveries"]["lost"] == 0 and faults["admission_slots_held_at_end"] == 0
    # the run really injected what it claims: every crash point fired, every receiver was used
    assert set(faults["crash_rates"]) == set(faults["crashes_injected"])
    assert all(n > 0 for n in faults["crashes_injected"].values()), faults["crashes_injected"]
    assert set(faults["deliveries"]["by_receiver"]) == {"ok", "slow", "trickle", "down", "gone", "failing"}
    assert faults["reconcile"]["runs"] > 0 and not faults["reconcile"]["errors"]
    assert sum(faults["breakdown"].values()) == faults["job_records"]
