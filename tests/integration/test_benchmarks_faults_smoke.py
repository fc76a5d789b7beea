"""``python -m benchmarks --only faults`` runs end to end with ten jobs under every emulator fault and reports
each figure of DESIGN §11's fault budget (values unchecked: benchmarks print figures, they never assert them;
the 1,000-job figures are the README's)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_benchmarks_smoke import run_benchmarks

BUDGET_KEYS = {
    "terminal",
    "terminal_pct",
    "lost",
    "duplicate_submissions",
    "images_submitted_twice",
    "duplicate_jobs",
    "duplicate_executions",
}


def test_fault_benchmark_reports_the_budget_figures_for_ten_jobs(tmp_path: Path) -> None:
    # the part runs the stack in a child process of the benchmark's own
    stdout, report = run_benchmarks(
        tmp_path,
        "--only",
        "faults",
        "--fault-jobs",
        "10",
        "--fault-concurrency",
        "10",
        "--fault-deadline",
        "10",
    )
    assert "faults (DESIGN §11" in stdout and "wall time" in stdout
    assert report["parts"] == ["faults"]
    faults = report["faults"]
    assert faults["jobs"] == 10 and faults["accepted"] + faults["refused"] == 10
    assert faults["parameters"]["JobDeadlineSeconds"] == "10"
    assert BUDGET_KEYS <= set(faults) and all(isinstance(faults[k], int | float) for k in BUDGET_KEYS)
    assert sum(faults["ways_in"].values()) == 10
    assert {"deliveries", "final_events_per_job", "duplicate_deliveries", "unverified"} <= set(
        faults["webhooks"]
    )
    assert sum(faults["breakdown"].values()) == faults["job_records"]
