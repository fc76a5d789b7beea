"""Figures 1, 2 and 4: how long after SAM3 finishes the caller's webhook arrives, by path.

Each job is a box prompt on the sample scene, POSTed to ``/v1/segmentations`` with the caller's webhook;
the caller is a ``WebhookReceiver`` (verifies with ``standardwebhooks``, stamps ``received_at``).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from benchmarks.harness import Bench

JobPath = Literal["callback", "poll"]
WEBHOOK_TIMEOUT_S = 120.0


@dataclass
class JobSample:
    job_id: str
    posted_at: float  # POST /v1/segmentations sent
    accepted_at: float  # its 202 received
    received_at: float  # the caller's verified webhook received
    status: str
    callback_sent_at: float | None = None  # the emulator started POSTing WaveSpeed's callback
    completed_at: float | None = None  # the prediction completed (from the emulator's record)
    inference_ms: int | None = None
    states: list[str] = field(default_factory=list)
    history_events: int = 0
    state_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


def set_path(bench: Bench, path: JobPath, latency_s: float) -> None:
    """Fixed emulator latency; on the poll path every callback is dropped, so jobs finish by polling."""
    bench.faults(latency_s=[latency_s, latency_s], drop_callback=1.0 if path == "poll" else 0.0)


def run_jobs(
    bench: Bench,
    path: JobPath,
    *,
    jobs: int,
    concurrency: int,
    done: Callable[[list[JobSample]], object] | None = None,
) -> list[JobSample]:
    """Run ``jobs`` jobs with at most ``concurrency`` in flight, call ``done`` with them (the cost meter
    closes its window there), then read each one's prediction record (before the emulator is reset for
    the next phase)."""
    run = uuid.uuid4().hex[:8]

    def one(index: int) -> JobSample:
        job_id, posted, accepted = bench.submit({"bench": f"{run}-{path}-{index}"})
        try:
            delivery = bench.receiver.wait_for(job_id, timeout=WEBHOOK_TIMEOUT_S)
        except TimeoutError:  # reported as not succeeded, not raised: figures are printed, not asserted
            return JobSample(job_id, posted, accepted, math.nan, "no webhook")
        status = str((delivery.payload or {})["data"]["status"])
        return JobSample(job_id, posted, accepted, delivery.received_at, status)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"bench-{path}") as pool:
        samples = list(pool.map(one, range(jobs)))
    if done is not None:
        done(samples)
    for sample in samples:
        sample.callback_sent_at = bench.tap.sent.get(sample.job_id)
        prediction_id = bench.job(sample.job_id).get("prediction_id")
        completed = bench.prediction_completed_at(prediction_id) if prediction_id else None
        if completed is not None:
            sample.completed_at, sample.inference_ms = completed
    return samples
