"""``maskgate submit --wait``'s progress line: the status, and a waiting job's place in line."""

from __future__ import annotations

from maskgate_local.cli.submit import progress_label


def test_progress_shows_a_waiting_jobs_place_in_line_and_estimated_start() -> None:
    job = {"status": "queued", "queue_position": 3, "estimated_start": "2026-12-07T01:02:18Z"}
    assert progress_label(job) == "queued, 3 in line, estimated start 01:02:18 UTC"


def test_progress_is_the_bare_status_when_the_job_is_not_waiting_in_line() -> None:
    assert progress_label({"status": "queued", "queue_position": None, "estimated_start": None}) == "queued"
    assert progress_label({"status": "submitted", "queue_position": None}) == "submitted"
    assert progress_label({"status": "succeeded"}) == "succeeded"
