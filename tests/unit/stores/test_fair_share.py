"""The fair rule (maskgate.stores.fair_share): properties under arbitrary lines, holdings and releases."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from maskgate.stores.fair_share import admission_order, estimated_start, next_admitted

TENANTS = ["t0", "t1", "t2", "t3"]


def job(tenant: str, n: int) -> str:
    """A job id that sorts by ``n`` (the arrival), as time-sortable ids do."""
    return f"seg_{n:08d}_{tenant}"


lines = st.lists(
    st.tuples(st.sampled_from(TENANTS), st.integers(0, 10_000)), max_size=40, unique_by=lambda x: x[1]
)
holdings = st.dictionaries(st.sampled_from(TENANTS), st.integers(0, 5))


def as_waiting(line: list[tuple[str, int]]) -> dict[str, str]:
    return {job(tenant, n): tenant for tenant, n in line}


@given(lines, holdings)
def test_order_is_every_waiting_job_once_and_each_tenant_first_come_first_served(
    line: list[tuple[str, int]], held: dict[str, int]
) -> None:
    waiting = as_waiting(line)
    order = admission_order(waiting, held)
    assert sorted(order) == sorted(waiting)
    for tenant in TENANTS:
        own = [j for j in order if waiting[j] == tenant]
        assert own == sorted(own)


@given(lines, holdings)
def test_each_pick_goes_to_a_tenant_holding_the_fewest_among_those_waiting(
    line: list[tuple[str, int]], held: dict[str, int]
) -> None:
    waiting = as_waiting(line)
    counts = {t: held.get(t, 0) for t in TENANTS}
    left = dict(waiting)
    for picked in admission_order(waiting, held):
        tenant = waiting[picked]
        assert counts[tenant] == min(counts[waiting[j]] for j in left)
        counts[tenant] += 1
        del left[picked]


@given(lines, st.dictionaries(st.sampled_from(TENANTS[:3]), st.integers(1, 5), min_size=3))
def test_a_new_tenant_holding_no_slot_is_admitted_at_the_next_release(
    line: list[tuple[str, int]], held: dict[str, int]
) -> None:
    """Every other waiting tenant holds a slot: the new tenant's first job, however late it came
    and however many the others queued, takes the next slot freed."""
    waiting = {j: t for j, t in as_waiting(line).items() if t != "t3"}
    newcomer = job("t3", 99_999)
    waiting[newcomer] = "t3"
    assert next_admitted(waiting, held, free=1) == [newcomer]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4),
    st.lists(st.integers(1, 40), min_size=2, max_size=4),
    st.randoms(use_true_random=False),
)
def test_no_tenant_waiting_without_a_slot_is_passed_over_more_than_once_per_other_tenant(
    slots: int, flood: list[int], rng: random.Random
) -> None:
    """A simulation: tenants queue floods of any size, slots are released in any order (an
    adversary picks which holder finishes first); each release hands the slot over by the rule.
    A tenant holding no slot while its jobs wait is admitted within as many hand-overs as there
    are other tenants: nobody is starved, whoever floods."""
    tenants = [f"t{i}" for i in range(len(flood))]
    waiting = {
        job(t, rng.randrange(10**6) * 10 + i): t for i, t in enumerate(tenants) for _ in range(flood[i])
    }
    holders: dict[str, str] = {}
    served: dict[str, int] = {}
    turn = 0
    passed_over = dict.fromkeys(tenants, 0)

    def hand_over() -> None:
        nonlocal turn
        held = {t: sum(1 for h in holders.values() if h == t) for t in tenants}
        for picked in next_admitted(waiting, held, slots - len(holders), served):
            tenant = waiting.pop(picked)
            holders[picked] = tenant
            turn += 1
            served[tenant] = turn
            for other in tenants:
                starving = other not in holders.values() and other in waiting.values()
                passed_over[other] = passed_over[other] + 1 if starving else 0

    hand_over()
    while waiting:
        del holders[rng.choice(sorted(holders))]
        hand_over()
        assert max(passed_over.values()) <= len(tenants) - 1


@given(st.integers(1, 500), st.integers(1, 300), st.floats(0.5, 120))
def test_estimated_start_grows_with_the_position_and_shrinks_with_more_slots(
    position: int, slots: int, job_seconds: float
) -> None:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    first = estimated_start(position, now=now, slots=slots, per_minute=0, job_seconds=job_seconds)
    later = estimated_start(position + 1, now=now, slots=slots, per_minute=0, job_seconds=job_seconds)
    roomier = estimated_start(position, now=now, slots=slots + 1, per_minute=0, job_seconds=job_seconds)
    assert now <= roomier <= first <= later
    assert abs((first - now).total_seconds() - position * job_seconds / slots) <= 0.5


def test_estimated_start_keeps_the_per_minute_pace() -> None:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    # Bronze: 2 slots, 2 a minute; the 5th in line starts two minutes on whatever the duration
    assert estimated_start(5, now=now, slots=2, per_minute=2, job_seconds=5) == now + timedelta(minutes=2)


def test_a_gate_that_refuses_a_tenant_sends_its_jobs_to_the_end_and_takes_no_slot() -> None:
    waiting = {job("t0", 1): "t0", job("t1", 2): "t1", job("t0", 3): "t0"}

    def at_most_one(tenant: str, held: int) -> bool:
        return tenant != "t0" or held < 1

    assert admission_order(waiting, {"t0": 1}, gate=at_most_one) == [job("t1", 2), job("t0", 1), job("t0", 3)]
    assert next_admitted(waiting, {"t0": 1}, free=3, gate=at_most_one) == [job("t1", 2)]
    assert next_admitted(waiting, {}, free=3, gate=at_most_one) == [job("t0", 1), job("t1", 2)]
