"""Fair admission on the local stack: two tenants share a tier of 2 WaveSpeed slots while one floods.

Tenant A queues 24 jobs at once; tenant B then sends a few. Each of B's jobs is handed one of the
next slots freed (not queued behind A's backlog), the line shows on ``GET /v1/segmentations/{id}``,
and every job ends succeeded with no slot or place in line left behind.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from maskgate.contracts.job import Job
from maskgate.stores.admission import Admission
from maskgate.stores.jobs import JobStore
from maskgate.stores.tenants import TenantStore
from tests.e2e.conftest import TIMEOUT, aws_client, dev_subprocess
from tests.e2e.test_vertical_slice import data_uri

pytestmark = pytest.mark.e2e
SLOTS = 2
FLOOD = 24
B_JOBS = 3


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("dev-fair")
    overrides = f"WaveSpeedConcurrency={SLOTS} JobDeadlineSeconds=900 PollInitialSeconds=5"
    with dev_subprocess(folder, "--parameter-overrides", overrides) as (ready, _):
        # every prediction takes about half a second, so A's flood really queues
        faults = {"latency_s": [0.3, 0.4]}
        httpx.put(
            ready["wavespeed_url"] + "/_emulator/faults", json=faults, timeout=TIMEOUT
        ).raise_for_status()
        yield ready


def create(ready: dict[str, Any], key: str, n: int) -> str:
    response = httpx.post(
        ready["api_url"] + "/v1/segmentations",
        headers={"Authorization": f"Bearer {key}"},
        json={"image": data_uri(), "prompt": f"the disc {n}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def get(ready: dict[str, Any], key: str, job_id: str) -> dict[str, Any]:
    response = httpx.get(
        ready["api_url"] + f"/v1/segmentations/{job_id}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=TIMEOUT,
    )
    return dict(response.raise_for_status().json())


def in_line(ready: dict[str, Any], key: str, job_id: str, timeout: float = 60.0) -> int:
    """The job's place in line once its Submit has put it there (it waits behind the flood)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = get(ready, key, job_id)
        if shown["queue_position"] is not None:
            return int(shown["queue_position"])
        assert shown["status"] == "queued", shown["status"]
        time.sleep(0.1)  # polling a condition with a deadline, not waiting blindly
    raise AssertionError(f"{job_id} never showed a place in line")


def wait_all(store: JobStore, job_ids: list[str], timeout: float = 240.0) -> list[Job]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [store.get(job_id) for job_id in job_ids]
        if all(job.status.terminal for job in jobs):
            return jobs
        time.sleep(0.5)  # polling a condition with a deadline, not waiting blindly
    raise AssertionError("not every job finished in time")


def test_a_flooding_tenant_does_not_hold_back_another_tenants_jobs(tier: dict[str, Any]) -> None:
    dynamodb = aws_client(tier, "dynamodb")
    store = JobStore(table=tier["table"], client=dynamodb)
    key_a = tier["api_key"]
    key_b = TenantStore(table=tier["table"], client=dynamodb).create_key("tenant-b").key
    # given: tenant A floods
    with ThreadPoolExecutor(max_workers=8) as pool:
        flood = list(pool.map(lambda n: create(tier, key_a, n), range(FLOOD)))
    last_a = in_line(tier, key_a, flood[-1])
    # when: tenant B sends its jobs while A's backlog waits
    ours = [create(tier, key_b, n) for n in range(B_JOBS)]
    seen_b: list[int] = []
    in_line_since: dict[str, datetime] = {}  # when each of B's jobs was first seen in line
    waiting, deadline = set(ours), time.monotonic() + 120
    while waiting and time.monotonic() < deadline:
        for job_id in sorted(waiting):
            shown = get(tier, key_b, job_id)
            if shown["status"] != "queued":
                waiting.discard(job_id)
            elif shown["queue_position"] is not None:
                in_line_since.setdefault(job_id, datetime.now(UTC))
                seen_b += [shown["queue_position"]] if job_id == ours[0] else []
                assert datetime.fromisoformat(shown["estimated_start"]).tzinfo is not None
        time.sleep(0.1)  # polling a condition with a deadline (the loop ends when all left the line)
    jobs = {job.id: job for job in wait_all(store, flood + ours)}
    # then: every job succeeded, nothing is left in the tier
    failed = {job.id: job.error for job in jobs.values() if job.status.value != "succeeded"}
    assert failed == {}
    admission = Admission(
        table=tier["table"], client=dynamodb, concurrency=SLOTS, per_minute=0, stale_after_seconds=900
    )
    assert admission.in_flight() == {} and admission.waiters() == {}
    # B's first job was first in line whenever it was in line, while A's last job stood deep in it
    assert set(seen_b) <= {1}
    assert last_a > 1
    # each of B's jobs started within the slots already being handed over once it stood in line:
    # never behind A's backlog, which first-come admission would have put it behind (counted from
    # when it was seen in line, not from its creation: its Submit may run a while after that)
    for job_id, since in in_line_since.items():
        mine = jobs[job_id]
        assert mine.submit_started_at is not None
        passed = [
            a
            for a in (jobs[j] for j in flood)
            if a.submit_started_at is not None and since < a.submit_started_at < mine.submit_started_at
        ]
        assert len(passed) <= SLOTS, (job_id, len(passed))
    backlog = [j for j in flood if jobs[j].submit_started_at > jobs[ours[-1]].submit_started_at]  # type: ignore[operator]
    assert len(backlog) >= FLOOD // 4  # A's flood was still waiting when B's last job started
