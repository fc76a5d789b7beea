"""How a job's workflow waits: its callback window, the growing poll waits, the deadline, and the
execution input that carries them (ASL takes wait lengths only as literals or paths)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from maskgate.settings import Settings


@dataclass(frozen=True)
class Timings:
    """How long a job waits for its callback before polling, and how the waits grow to the deadline.

    They travel in the execution input because ASL takes wait lengths only as literals or paths,
    and the definition must stay valid JSON with the template's values substituted in.
    """

    initial_seconds: int = 10
    max_seconds: int = 30
    deadline_seconds: int = 900
    growth: float = 1.5

    def schedule(self) -> list[int]:
        """Listening windows after the first: grow by ``growth`` up to ``max``, past the deadline."""
        waits, current, total = [], self.initial_seconds, self.initial_seconds
        while total < self.deadline_seconds + self.max_seconds:
            current = min(math.ceil(current * self.growth), self.max_seconds)
            waits.append(current)
            total += current
        return waits


def timings_of(settings: Settings) -> Timings:
    """The deployment's timings."""
    return Timings(
        initial_seconds=settings.poll_initial_seconds,
        max_seconds=settings.poll_max_seconds,
        deadline_seconds=settings.job_deadline_seconds,
    )


def execution_input(job_id: str, *, created_at: datetime, timings: Timings) -> dict[str, Any]:
    """The segmentation execution's input: what the job's first start and every restart send."""
    return {
        "job_id": job_id,
        "wait_seconds": timings.initial_seconds,
        "deadline_at": int(created_at.timestamp()) + timings.deadline_seconds,
        "attempt": 0,
        "schedule": timings.schedule(),
    }
