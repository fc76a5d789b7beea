"""``python -m benchmarks`` runs end to end with tiny counts and reports every figure (values unchecked:
benchmarks print figures, they never assert them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.report import REPORT_KEYS

ROOT = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {"n", "p50_ms", "p95_ms", "max_ms"}


def test_benchmarks_report_every_figure_with_tiny_counts(tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    # A subprocess, as `make bench` runs it: the in-process stack sets os.environ and patches moto.
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "benchmarks", "--jobs", "3", "--serial-jobs", "1", "--warmup", "1"]
        + ["--json", str(report_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "maskgate benchmarks  " in done.stdout and "wall time" in done.stdout
    report = json.loads(report_file.read_text())
    assert set(REPORT_KEYS) <= set(report)
    assert {"date", "machine", "cpus", "python"} <= set(report["header"])
    assert report["jobs"]["callback"]["submitted"] == report["jobs"]["poll"]["submitted"] == 3
    for figures in (
        report["callback_sent_to_webhook"],
        report["completed_to_webhook"]["callback"],
        report["completed_to_webhook"]["poll"],
        report["accepted_to_webhook"],
        report["maskgate_adds"],
        report["serial_callback"]["callback_sent_to_webhook"],
    ):
        assert set(figures) == SUMMARY_KEYS
    assert set(report["poll_over_callback"]) == {"p50", "p95"}
    for path in ("callback", "poll"):
        assert {
            "state_entries_mean",
            "history_events_mean",
            "cost_usd_per_job",
            "share_of_sam3_price",
        } <= set(report["transitions"][path])
