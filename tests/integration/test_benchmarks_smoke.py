"""``python -m benchmarks`` runs end to end with tiny counts and reports every figure (values unchecked:
benchmarks print figures, they never assert them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.report import REPORT_KEYS
from benchmarks.startup.lambda_env import SCENARIOS, STEPS

ROOT = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {"n", "p50_ms", "p95_ms", "max_ms"}


def run_benchmarks(tmp_path: Path, *argv: str, timeout: float = 120) -> tuple[str, dict[str, Any]]:
    """``python -m benchmarks <argv> --json``, as `make bench` runs it (a subprocess: the in-process
    stack sets os.environ and patches moto); its stdout and its JSON report."""
    report_file = tmp_path / "report.json"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "benchmarks", *argv, "--json", str(report_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, (done.stdout[-6000:], done.stderr[-3000:])
    return done.stdout, json.loads(report_file.read_text())


def test_benchmarks_report_every_figure_with_tiny_counts(tmp_path: Path) -> None:
    stdout, report = run_benchmarks(
        tmp_path, "--only", "stack", "--jobs", "3", "--poll-jobs", "3", "--serial-jobs", "1", "--warmup", "1",
        "--masks-only-jobs", "2",
    )  # fmt: skip
    assert "maskgate benchmarks  " in stdout and "wall time" in stdout
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
    assert_cost_part(report["cost"], stdout, jobs=3)


def assert_cost_part(cost: dict[str, Any], stdout: str, *, jobs: int) -> None:
    """The cost per image was counted on both paths (what was counted, not how much it cost)."""
    assert "cost per image at list prices" in stdout and "workflow options" in stdout
    assert cost["prices"]["checked"] and "DynamoDB" in cost["prices"]["sources"]
    for path in ("callback", "poll"):
        figures = cost["paths"][path]
        assert figures["jobs"] == jobs
        assert {
            "Step Functions transitions",
            "Lambda requests",
            "Lambda duration (GB-s)",
            "DynamoDB writes (WRU)",
            "S3 requests",
            "API Gateway (HTTP API)",
        } <= set(figures["components"])
        assert figures["counts"]["lambda_invocations"] > 0 and figures["counts"]["api_requests"] >= 1
        assert {"Api", "Submit"} <= set(figures["functions"])
        assert set(figures["memory"]["measured_duration"]) == {"256", "512", "1024", "1769"}
        assert len(figures["alternatives"]) == 3
    assert "Api" in cost["rss_mb"] and "Api" in cost["serial_p50_ms"]
    # the instances step timed once per job, and the masks-only window beside it
    assert cost["paths"]["callback"]["instances"]["calls_per_job"] == 1.0
    assert (
        cost["paths"]["callback_masks_only"]["counts"]["s3_tier1"]
        < cost["paths"]["callback"]["counts"]["s3_tier1"]
    )
    assert "of which Store's instances step" in stdout and 'with outputs ["masks"]' in stdout


def test_instances_part_times_store_for_1_and_12_megapixel_masks(tmp_path: Path) -> None:
    stdout, report = run_benchmarks(
        tmp_path, "--only", "instances", "--instances-runs", "1", "--instances-repeats", "1"
    )
    assert "Store's instances step" in stdout
    part = report["instances"]
    assert set(part["sizes"]) == {"1 MP", "12 MP"}
    assert all(size["instances"] == 4 for size in part["sizes"].values())
    assert part["cold_import"]["handler_ms"] > 0 and part["cold_import"]["imaging_ms"] > 0


def test_cold_start_and_overhead_parts_run_alone_with_tiny_counts(tmp_path: Path) -> None:
    """Issue 6's child-process parts (the layer part needs pip and the index: not run here)."""
    stdout, report = run_benchmarks(
        tmp_path,
        "--only",
        "coldstart,overhead",
        "--coldstart-runs",
        "1",
        "--overhead-iterations",
        "2",
        "--overhead-warmup",
        "1",
    )
    assert "cold start:" in stdout and "warm api overhead" in stdout and "wall time" in stdout
    assert report["parts"] == ["coldstart", "overhead"] and "jobs" not in report
    cold = report["coldstart"]
    assert set(cold["imports"]) == set(STEPS)
    for figures in cold["imports"].values():
        assert figures["n"] >= 1 and {"median_ms", "ratio", "budget", "verdict"} <= set(figures)
    invokes = cold["first_invokes"]
    assert set(invokes) == set(SCENARIOS)
    # what each first invoke did (its answer), not how long it took
    assert invokes["api_health"]["outcome"].startswith("HTTP 200")
    assert invokes["api_create"]["outcome"].startswith("HTTP 202")
    assert invokes["on_upload"]["outcome"] == "jobs: failed"
    # the admission release (a no-op conditional remove here), then the failure itself
    assert invokes["fail"]["aws_calls"] == ["dynamodb.UpdateItem", "dynamodb.UpdateItem"]
    for key in ("api_create", "on_upload", "fail"):
        assert "failed_calls" in invokes[key]["baseline_outcome"]
    assert set(cold["import_self_ms"]) == {"fail", "bare_worker", "api", "bare_api"}
    over = report["overhead"]
    for name in ("hello", "post", "post_bare", "get", "get_bare"):
        assert over[name]["n"] == 2
    assert "s3.PutObject" in over["post_calls"] and "dynamodb.GetItem" in over["get_calls"]


def test_throughput_part_reports_jobs_per_second_at_each_level_with_tiny_counts(tmp_path: Path) -> None:
    """Issue 12's part: one local stack, jobs/s at each level in flight (values unchecked)."""
    stdout, report = run_benchmarks(
        tmp_path, "--only", "throughput", "--throughput-levels", "1:2,2:3", "--throughput-warmup", "1"
    )
    assert "throughput of the local stack" in stdout and "wall time" in stdout
    assert report["parts"] == ["throughput"]
    part = report["throughput"]
    assert part["warmup_jobs"] == 1 and part["emulator_latency_s"] == [0, 0] and part["poll_initial_s"] == 10
    assert [(level["in_flight"], level["jobs"]) for level in part["levels"]] == [(1, 2), (2, 3)]
    for level in part["levels"]:
        for key in (
            "jobs_per_s",
            "wall_s",
            "cpu_s",
            "jobs_per_cpu_s",
            "accepted_to_webhook_p50_ms",
            "calibration_ms",
        ):
            assert isinstance(level[key], int | float), (key, level)
        assert isinstance(level["succeeded"], int) and isinstance(level["webhooks"], int)


def test_fanout_part_prices_each_extra_endpoint_with_tiny_counts(tmp_path: Path) -> None:
    """Issue 13's part: cost per image and latency with 0 and 2 registered endpoints (values unchecked,
    but every endpoint got every job's event, verified with its own secret)."""
    stdout, report = run_benchmarks(
        tmp_path, "--only", "fanout", "--fanout-levels", "0,2", "--fanout-jobs", "2"
    )
    assert "fan-out to registered endpoints" in stdout
    levels = report["fanout"]["levels"]
    assert [level["endpoints"] for level in levels] == [0, 2]
    assert levels[1]["endpoint_deliveries_verified"] == 4 and levels[1]["succeeded"] == 2
    assert isinstance(levels[1]["usd_per_extra_endpoint"], float)
    for key in ("usd_per_image", "transitions", "accepted_to_all_webhooks_p50_ms"):
        assert isinstance(levels[0][key], int | float)


def test_fairness_part_compares_tenant_bs_wait_under_a_flood_fair_vs_first_come(tmp_path: Path) -> None:
    """Fair admission's part with a small flood: both rules ran on the same arrivals; on the virtual
    clock (deterministic, not wall time) every job of the fair run started and B's p95 wait stayed
    within two job durations, while first-come kept B behind A's backlog."""
    stdout, report = run_benchmarks(tmp_path, "--only", "fairness", "--fairness-flood", "30")
    assert "fair admission: tenant B's wait" in stdout
    part = report["fairness"]
    fair, first = part["fair"], part["first_come"]
    assert fair["failed"] == 0 and fair["b"]["never_started"] == 0 and fair["a"]["never_started"] == 0
    assert fair["b"]["wait_p95_job_durations"] <= 2.0
    assert first["b"]["wait_p95_s"] > fair["b"]["wait_p95_s"]


def test_cache_part_measures_hits_against_misses_with_tiny_counts(tmp_path: Path) -> None:
    """The result cache's part: the hit window is answered from the cache (no WaveSpeed submission),
    the miss window pays once per job, the off window never consults the cache (figures unchecked)."""
    stdout, report = run_benchmarks(tmp_path, "--only", "cache", "--cache-jobs", "2")
    assert "result cache" in stdout
    windows = report["cache"]["windows"]
    jobs = report["cache"]["jobs"]
    assert windows["off"]["cache"] == {"None": jobs} and windows["off"]["wavespeed_submissions"] == jobs
    assert windows["miss"]["cache"] == {"miss": jobs} and windows["miss"]["wavespeed_submissions"] == jobs
    assert windows["hit"]["cache"] == {"hit": jobs} and windows["hit"]["wavespeed_submissions"] == 0
    assert set(windows["hit"]["shapes"]) == {"Submit → Notify"}
    for key in ("usd_per_image", "transitions", "accepted_to_webhook_p50_ms"):
        assert isinstance(windows["hit"][key], int | float)
