"""When a failed webhook is tried again: the retry schedule, jittered, at least what ``Retry-After`` asked."""

from __future__ import annotations

import random
from collections.abc import Callable

DEFAULT_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_RETRY_AFTER_SECONDS = 6 * 3600
JITTER = 0.1


def next_wait(
    schedule: tuple[int, ...],
    step: int,
    *,
    retry_after: int | None,
    rand: Callable[[], float] = random.random,
) -> int | None:
    """Seconds before retry ``step`` (0-based), jittered ±10 % and at least a capped Retry-After;
    None once the schedule is spent."""
    if step >= len(schedule):
        return None
    base = schedule[step] * (1 - JITTER + 2 * JITTER * rand())
    floor = min(retry_after or 0, MAX_RETRY_AFTER_SECONDS)
    return max(1, round(base), floor)
