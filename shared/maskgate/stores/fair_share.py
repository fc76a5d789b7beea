"""The fair rule that shares the account's WaveSpeed slots between tenants (pure; no I/O).

Each freed slot goes to the oldest waiting job of the tenant that holds the fewest slots among the
tenants with jobs waiting; a tie goes to the tenant served least recently (``served``: tenant → when
it last got a slot, any increasing number; never served comes first), then to the oldest job. Job
ids are time-sortable, so a tenant's own jobs go first-come first-served by id. A tenant with 200
jobs waiting therefore never gets the next slot while another waits holding fewer, and a tenant that
holds no slot is admitted within as many hand-overs as there are other tenants waiting with none
(at the next one when every other waiting tenant holds a slot).

Another reason for a job to wait plugs in as a ``Gate``: ``gate(tenant, held)`` says whether the
tenant, holding ``held`` slots, may start one more (a per-tenant "jobs in flight" quota, say). The
jobs of a tenant its gate refuses keep their place in line and come after every admissible job.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

Gate = Callable[[str, int], bool]


def admit_all(tenant: str, held: int) -> bool:  # noqa: ARG001 (the Gate signature)
    """The gate that lets every tenant start another job."""
    return True


def admission_order(
    waiting: Mapping[str, str],
    held: Mapping[str, int],
    served: Mapping[str, int] | None = None,
    gate: Gate = admit_all,
) -> list[str]:
    """The waiting jobs (job id → tenant) in the order the fair rule admits them, given the slots
    each tenant holds now; jobs of tenants the gate refuses come last, oldest first."""
    last = dict(served or {})
    queues: dict[str, list[str]] = defaultdict(list)
    for job_id in sorted(waiting):
        queues[waiting[job_id]].append(job_id)
    counts = {tenant: held.get(tenant, 0) for tenant in queues}
    heap = [(counts[tenant], last.get(tenant, -1), jobs[0], tenant) for tenant, jobs in queues.items()]
    heapq.heapify(heap)
    turn = max(last.values(), default=0) + 1
    order: list[str] = []
    refused: list[str] = []
    positions = dict.fromkeys(queues, 0)
    while heap:
        count, _, job_id, tenant = heapq.heappop(heap)
        if not gate(tenant, count):
            refused.extend(queues[tenant][positions[tenant] :])
            continue
        order.append(job_id)
        positions[tenant] += 1
        if positions[tenant] < len(queues[tenant]):
            heapq.heappush(heap, (count + 1, turn, queues[tenant][positions[tenant]], tenant))
        turn += 1
    return order + sorted(refused)


def next_admitted(
    waiting: Mapping[str, str],
    held: Mapping[str, int],
    free: int,
    served: Mapping[str, int] | None = None,
    gate: Gate = admit_all,
) -> list[str]:
    """The waiting jobs that take the ``free`` slots now: the head of the order its gate admits."""
    admitted = []
    counts = dict(held)
    for job_id in admission_order(waiting, held, served, gate)[: max(free, 0)]:
        tenant = waiting[job_id]
        if not gate(tenant, counts.get(tenant, 0)):
            break  # the rest of the order is the refused tail
        admitted.append(job_id)
        counts[tenant] = counts.get(tenant, 0) + 1
    return admitted


def estimated_start(
    position: int, *, now: datetime, slots: int, per_minute: int, job_seconds: float
) -> datetime:
    """When the job at ``position`` (1: next) should start: every slot frees once a job's duration,
    so the n-th release comes after n × duration / slots; a per-minute limit adds its own pace."""
    waits = [0.0]
    if slots > 0:
        waits.append(position * job_seconds / slots)
    if per_minute > 0:
        waits.append((position - 1) // per_minute * 60.0)
    return now + timedelta(seconds=round(max(waits)))


def tenants_of(holders: Mapping[str, str]) -> dict[str, int]:
    """Slots held per tenant, from the holders (job id → tenant)."""
    counts: dict[str, int] = defaultdict(int)
    for tenant in holders.values():
        counts[tenant] += 1
    return dict(counts)
