"""maskgate.workflow.timings: the listening schedule."""

from __future__ import annotations

from maskgate.workflow.timings import Timings


def test_schedule_grows_by_half_rounded_up_then_holds_at_the_cap():
    # 3 → 5 (4.5↑) → 8 (7.5↑) → 12 → 18 → 27 → 30 (capped) …
    waits = Timings(initial_seconds=3, max_seconds=30, deadline_seconds=200).schedule()
    assert waits[:7] == [5, 8, 12, 18, 27, 30, 30]


def test_schedule_listens_past_the_deadline_by_one_maximum_window():
    timings = Timings(initial_seconds=3, max_seconds=30, deadline_seconds=200)
    waits = timings.schedule()
    assert 3 + sum(waits) >= 200 + 30
    assert 3 + sum(waits[:-1]) < 200 + 30


def test_schedule_for_the_local_stack_timings():
    # 1 → 2 (1.5↑) → 2 (capped) …, until 1 + sum ≥ 60 + 2
    waits = Timings(initial_seconds=1, max_seconds=2, deadline_seconds=60).schedule()
    assert waits == [2] * 31


def test_schedule_is_all_integers_of_at_least_one_second():
    waits = Timings(initial_seconds=1, max_seconds=1, deadline_seconds=10).schedule()
    assert waits and all(isinstance(w, int) and w >= 1 for w in waits)
