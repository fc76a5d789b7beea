"""Admission to WaveSpeed: the account's tier, shared fairly by every tenant, kept in the jobs table.

WaveSpeed limits an account by tier (https://wavespeed.ai/docs/account-levels, read 2026-12-04):
images started per minute and tasks running at once (Bronze 2/min and 2, Silver 500 and 300, Gold
3,000 and 3,000, Ultra 5,000 and 10,000). Reserved Lambda concurrency cannot express either, so
Submit asks here first. One item, ``LIMIT#wavespeed``, holds:

- **slots** (map job id → when it was taken) and **held_by** (job id → tenant): a job holds a slot
  from its submit until its prediction has finished (Store, Fail or cancel give it back). A slot
  whose job died without giving it back is reclaimed once it is older than the job deadline plus a
  minute, when the map is full.
- **waiting** (job id → tenant): the line of jobs that found every slot taken. A released slot is
  handed to the next job the fair rule (``maskgate.stores.fair_share``) picks, in the same
  conditional write, and that job's parked workflow is woken (``wake``); a job never takes a free
  slot ahead of the rule's pick either. Every write that changes the line or the slots from a read
  of it is conditional on the item's ``version``, so the rule is applied to what is really there.
- **served** (tenant → when it last got a slot, ms): the rule's tie-break between tenants holding
  as many slots (served least recently first).
- **job_seconds**: how long a slot is held, a running mean measured at each release while jobs wait
  (``estimated_start`` in the API).

**Submits per minute** (``LIMIT#wavespeed#<minute>``, a counter expiring through the table's TTL):
every submit attempt counts, as WaveSpeed counts them; over it → ``AdmissionDeferred``, retried with
backoff. No free slot → ``AdmissionQueued``: the job is in line and waits to be woken.

Cost: with nobody waiting a take and a release are one write each, as without the line. While jobs
wait, every write to the item is billed per started KB of it (a waiting job adds ~45 bytes): a line
of 200 makes each of the ~3 writes per job about 9 write units. A limit of 0 turns that check off.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from maskgate.errors import AdmissionDeferred, AdmissionQueued
from maskgate.ids import job_id_time
from maskgate.observability import logger
from maskgate.stores.fair_share import Gate, admission_order, admit_all, estimated_start, next_admitted
from maskgate.stores.rate_limit import count_in_window

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

SLOTS_KEY = "LIMIT#wavespeed"
STALE_MARGIN_SECONDS = 60
TYPICAL_JOB_SECONDS = 10.0  # SAM3's ~5 s, the submit and the store, until a release measures it
MEAN_WEIGHT = 0.2  # of the newest measurement in the running mean of job_seconds
_TRIES = 6  # conditional writes raced by other containers before the job just waits in line


@dataclass(frozen=True)
class Tier:
    """The slots item as read: who holds a slot, who waits, and its version."""

    slots: dict[str, float] = field(default_factory=dict)
    held_by: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    served: dict[str, int] = field(default_factory=dict)
    version: int = 0
    job_seconds: float = TYPICAL_JOB_SECONDS
    has_line: bool = True  # False: an item written before the line existed (its maps are added)

    def held(self) -> dict[str, int]:
        """Slots held per tenant."""
        counts: dict[str, int] = {}
        for job_id in self.slots:
            tenant = self.held_by.get(job_id, "")
            counts[tenant] = counts.get(tenant, 0) + 1
        return counts


@dataclass(frozen=True)
class Place:
    """A waiting job's place in line: 1 is admitted at the next release."""

    queue_position: int
    estimated_start: datetime


def _number(value: dict[str, Any] | None, default: float) -> float:
    return float(value["N"]) if value else default


def _tier(item: dict[str, Any]) -> Tier:
    return Tier(
        slots={job: float(v["N"]) for job, v in item.get("slots", {}).get("M", {}).items()},
        held_by={job: v["S"] for job, v in item.get("held_by", {}).get("M", {}).items()},
        waiting={job: v["S"] for job, v in item.get("waiting", {}).get("M", {}).items()},
        served={tenant: int(v["N"]) for tenant, v in item.get("served", {}).get("M", {}).items()},
        version=int(_number(item.get("version"), 0)),
        job_seconds=_number(item.get("job_seconds"), TYPICAL_JOB_SECONDS),
        has_line=all(name in item for name in ("held_by", "waiting", "served")),
    )


class Admission:
    def __init__(
        self,
        *,
        table: str,
        client: DynamoDBClient,
        concurrency: int,
        per_minute: int,
        stale_after_seconds: int,
        clock: Callable[[], float] = time.time,
        wake: Callable[[str], None] | None = None,
        gate: Gate = admit_all,
    ) -> None:
        self._table = table
        self._client = client
        self._concurrency = concurrency
        self._per_minute = per_minute
        self._stale_after = stale_after_seconds + STALE_MARGIN_SECONDS
        self._clock = clock
        self._wake = wake
        self._gate = gate

    @property
    def enabled(self) -> bool:
        return self._concurrency > 0 or self._per_minute > 0

    def admit(self, job_id: str, *, tenant: str) -> None:
        """Take a slot for the job (or keep the one it holds or was handed) and count one submit
        this minute.

        Raises AdmissionQueued when every slot is taken (the job is then in line) and
        AdmissionDeferred over the per-minute limit (a slot taken here is then given back).
        """
        newly_taken = self.take(job_id, tenant=tenant) if self._concurrency > 0 else False
        if self._per_minute > 0:
            try:
                self._count_submit()
            except AdmissionDeferred:
                if newly_taken:
                    self.release(job_id)
                raise

    def take(self, job_id: str, *, tenant: str) -> bool:
        """Take a slot by the fair rule (True: newly taken; False: held already); AdmissionQueued
        puts the job in line when the rule gives the free slots, if any, to others."""
        if self._take_at_once(job_id, tenant):
            return True
        for _ in range(_TRIES):
            tier = self._read()
            if tier is None or not tier.has_line:
                self._create(tier)
                continue
            if job_id in tier.slots:
                return False
            if len(tier.slots) >= self._concurrency and self._reclaim_stale(tier.slots):
                continue
            waiting = {**tier.waiting, job_id: tenant}
            free = self._concurrency - len(tier.slots)
            admitted = next_admitted(waiting, tier.held(), free, tier.served, self._gate)
            if not admitted and job_id in tier.waiting:
                break  # in line already, nothing to change
            if not self._write(tier, admitted, waiting, queue=job_id):
                continue
            self._wake_all(job for job in admitted if job != job_id)
            if job_id in admitted:
                return True
            break
        raise AdmissionQueued(f"WaveSpeed concurrency: {self._concurrency} predictions already in flight")

    def release(self, job_id: str) -> None:
        """Give the job's slot back, or take it out of the line (a no-op when it is in neither), and
        hand what is free to the next jobs in line."""
        if self._concurrency <= 0:
            return
        old = self._remove(job_id)
        if old is None:
            return  # it holds no slot and waits in no line: released already, or never admitted
        before = _tier(old)
        if set(before.waiting) - {job_id}:
            taken = before.slots.get(job_id)
            self._hand_over(None if taken is None else self._clock() - taken)

    def _remove(self, job_id: str) -> dict[str, Any] | None:
        """Take the job's slot and place in line out; the item as it was, or None if it had neither."""
        for _ in range(2):
            try:
                return self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": SLOTS_KEY}},
                    UpdateExpression="REMOVE slots.#job, held_by.#job, waiting.#job ADD version :one",
                    ConditionExpression="attribute_exists(slots.#job) OR attribute_exists(waiting.#job)",
                    ExpressionAttributeNames={"#job": job_id},
                    ExpressionAttributeValues={":one": {"N": "1"}},
                    ReturnValues="ALL_OLD",
                )["Attributes"]
            except self._client.exceptions.ConditionalCheckFailedException:
                return None
            except ClientError as exc:
                tier = self._read()
                if exc.response["Error"]["Code"] != "ValidationException" or tier is None or tier.has_line:
                    raise
                self._create(tier)  # an item from before the line: its maps are added, then again
        return None

    def place(self, job_id: str, *, now: datetime | None = None) -> Place | None:
        """The job's place in line and when it should start; None when it is not waiting."""
        return self.places([job_id], now=now).get(job_id)

    def places(self, job_ids: list[str], *, now: datetime | None = None) -> dict[str, Place]:
        """The places of those of the jobs that wait in line: one read of the item."""
        if self._concurrency <= 0 or not job_ids:
            return {}
        tier = self._read(consistent=False)
        if tier is None or not set(job_ids) & set(tier.waiting):
            return {}
        at = now or datetime.fromtimestamp(self._clock(), UTC)
        order = admission_order(tier.waiting, tier.held(), tier.served, self._gate)
        found: dict[str, Place] = {}
        for index, job_id in enumerate(order):
            if job_id in job_ids:
                start = estimated_start(
                    index + 1,
                    now=at,
                    slots=self._concurrency,
                    per_minute=self._per_minute,
                    job_seconds=tier.job_seconds,
                )
                found[job_id] = Place(queue_position=index + 1, estimated_start=start)
        return found

    def in_flight(self) -> dict[str, float]:
        """The slots taken now: job id → when (for tests and operators)."""
        tier = self._read()
        return {} if tier is None else tier.slots

    def waiters(self) -> dict[str, float]:
        """The jobs in line: job id → when the job was created (for the reconcile sweep)."""
        tier = self._read()
        return {} if tier is None else {job: _created(job) for job in tier.waiting}

    def _take_at_once(self, job_id: str, tenant: str) -> bool:
        """The one-write take when nobody waits and a slot is free (or the job holds one already,
        False then); False also when the line must be read."""
        try:
            updated = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": SLOTS_KEY}},
                UpdateExpression=(
                    "SET slots.#job = if_not_exists(slots.#job, :now), held_by.#job = :tenant, "
                    "served.#tenant = :turn ADD version :one"
                ),
                ConditionExpression=(
                    "attribute_exists(held_by) AND attribute_exists(served) AND attribute_exists(waiting) "
                    "AND (attribute_exists(slots.#job) OR (size(slots) < :limit AND size(waiting) = :zero))"
                ),
                ExpressionAttributeNames={"#job": job_id, "#tenant": tenant},
                ExpressionAttributeValues={
                    ":now": {"N": str(int(self._clock()))},
                    ":turn": {"N": str(self._turn())},
                    ":tenant": {"S": tenant},
                    ":limit": {"N": str(self._concurrency)},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        held = updated.get("Attributes", {}).get("slots", {}).get("M", {})
        return job_id not in held

    def _hand_over(self, held_for: float | None) -> None:
        """Hand the free slots to the next jobs in line and wake them; fold in a slot's duration."""
        for _ in range(_TRIES):
            tier = self._read()
            if tier is None:
                return
            free = self._concurrency - len(tier.slots)
            admitted = next_admitted(tier.waiting, tier.held(), free, tier.served, self._gate)
            if not admitted and held_for is None:
                return
            seconds = None
            if held_for is not None:
                seconds = (1 - MEAN_WEIGHT) * tier.job_seconds + MEAN_WEIGHT * max(held_for, 0.0)
            if self._write(tier, admitted, tier.waiting, job_seconds=seconds):
                self._wake_all(admitted)
                return
        logger.info("slot hand-over raced on every try; the line's jobs take it when they wake")

    def _write(
        self,
        tier: Tier,
        admitted: list[str],
        waiting: dict[str, str],
        *,
        queue: str | None = None,
        job_seconds: float | None = None,
    ) -> bool:
        """Give slots to ``admitted`` and put ``queue`` in line, if the item is still at the version
        read; False when it changed meanwhile."""
        sets, removes = [], []
        names: dict[str, str] = {}
        values: dict[str, Any] = {":one": {"N": "1"}, ":version": {"N": str(tier.version)}}
        if admitted:
            values[":now"] = {"N": str(int(self._clock()))}
        served = max([self._turn(), *[turn + 1 for turn in tier.served.values()]])
        for index, job_id in enumerate(admitted):
            tenant = waiting[job_id]
            names[f"#a{index}"] = job_id
            values[f":t{index}"] = {"S": tenant}
            sets += [f"slots.#a{index} = :now", f"held_by.#a{index} = :t{index}"]
            if tenant not in names.values():
                names[f"#s{index}"] = tenant
                values[f":s{index}"] = {"N": str(served + index)}
                sets.append(f"served.#s{index} = :s{index}")
            if job_id in tier.waiting:
                removes.append(f"waiting.#a{index}")
        if queue is not None and queue not in admitted and queue not in tier.waiting:
            names["#q"] = queue
            values[":q"] = {"S": waiting[queue]}
            sets.append("waiting.#q = :q")
        if job_seconds is not None:
            values[":seconds"] = {"N": f"{job_seconds:.3f}"}
            sets.append("job_seconds = :seconds")
        expression = "SET " + ", ".join(sets) if sets else ""
        expression += (" REMOVE " + ", ".join(removes) if removes else "") + " ADD version :one"
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": SLOTS_KEY}},
            "UpdateExpression": expression.strip(),
            "ConditionExpression": "version = :version"
            if tier.version
            else "attribute_not_exists(version) OR version = :version",
            "ExpressionAttributeValues": values,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        try:
            self._client.update_item(**request)
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _turn(self) -> int:
        """When a tenant is served, for the rule's tie-break: the clock in milliseconds."""
        return int(self._clock() * 1000)

    def _wake_all(self, job_ids: Any) -> None:
        """Wake the parked workflows of jobs just handed a slot. A wake that fails is not lost: the
        job's wait times out and its Submit finds the slot it holds."""
        if self._wake is None:
            return
        for job_id in job_ids:
            try:
                self._wake(job_id)
            except Exception:
                logger.exception("waking a job handed a slot failed", extra={"woken_job": job_id})

    def _read(self, *, consistent: bool = True) -> Tier | None:
        """The slots item, or None before the first job ever created it."""
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": SLOTS_KEY}}, ConsistentRead=consistent
        ).get("Item")
        return None if item is None else _tier(item)

    def _create(self, tier: Tier | None) -> None:
        """Create the item, or add the line's maps to one written before the line existed."""
        empty: dict[str, Any] = {"M": {}}
        if tier is None:
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        "pk": {"S": SLOTS_KEY},
                        **dict.fromkeys(("slots", "held_by", "waiting", "served"), empty),
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except self._client.exceptions.ConditionalCheckFailedException:
                pass  # another container created it
            return
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": SLOTS_KEY}},
            UpdateExpression=(
                "SET slots = if_not_exists(slots, :empty), held_by = if_not_exists(held_by, :empty), "
                "waiting = if_not_exists(waiting, :empty), served = if_not_exists(served, :empty)"
            ),
            ExpressionAttributeValues={":empty": empty},
        )

    def _reclaim_stale(self, slots: dict[str, float]) -> bool:
        """Remove slots older than a job can live (each only if still that old); True when any was."""
        oldest_allowed = self._clock() - self._stale_after
        stale = {job: taken for job, taken in slots.items() if taken < oldest_allowed}
        for job, taken in stale.items():  # one released meanwhile leaves room all the same
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": SLOTS_KEY}},
                    UpdateExpression="REMOVE slots.#job, held_by.#job ADD version :one",
                    ConditionExpression="slots.#job = :taken",
                    ExpressionAttributeNames={"#job": job},
                    ExpressionAttributeValues={":taken": {"N": str(int(taken))}, ":one": {"N": "1"}},
                )
            except self._client.exceptions.ConditionalCheckFailedException:
                pass
        return bool(stale)

    def _count_submit(self) -> None:
        retry_after = count_in_window(
            self._client, table=self._table, key=SLOTS_KEY, limit=self._per_minute, now=self._clock()
        )
        if retry_after is not None:
            raise AdmissionDeferred(
                f"WaveSpeed submits per minute: {self._per_minute} used this minute", retry_after=retry_after
            )


def _created(job_id: str) -> float:
    """When the job was created, from its time-sortable id (0 for an id that carries no time)."""
    try:
        return job_id_time(job_id) / 1000
    except ValueError:
        return 0.0
