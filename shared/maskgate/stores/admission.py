"""Admission to WaveSpeed: the account's tier, shared by every container, kept in the jobs table.

WaveSpeed limits an account by tier (https://wavespeed.ai/docs/account-levels, read 2026-12-04):
images started per minute and tasks running at once (Bronze 2/min and 2, Silver 500 and 300, Gold
3,000 and 3,000, Ultra 5,000 and 10,000). Reserved Lambda concurrency cannot express either, so
Submit asks here first:

- **Slots** (``LIMIT#wavespeed``, a map ``slots`` of job id → when it was taken): a job holds one
  from its submit until its prediction has finished (Store, Fail or cancel give it back). Taking is
  one conditional write, re-entrant for the job that already holds one (a retried Submit). A slot
  whose job died without giving it back (a crashed container, a deleted execution) is reclaimed once
  it is older than the job deadline plus a minute, when the map is full.
- **Submits per minute** (``LIMIT#wavespeed#<minute>``, a counter expiring through the table's TTL):
  every submit attempt counts, as WaveSpeed counts them.

Full → ``AdmissionDeferred``, which the workflow retries with backoff (each retry is one state
transition; a queue that runs long costs that). A limit of 0 turns that check off.

Cost: the slots item grows about 35 bytes per slot, and DynamoDB bills a write per started KB: about
one write unit per 25 slots, three writes per job. Up to a few hundred slots that is a rounding
error; for the Gold and Ultra tiers turn the slot check off (0) and keep the per-minute one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from maskgate.errors import AdmissionDeferred
from maskgate.stores.rate_limit import count_in_window

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

SLOTS_KEY = "LIMIT#wavespeed"
STALE_MARGIN_SECONDS = 60


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
    ) -> None:
        self._table = table
        self._client = client
        self._concurrency = concurrency
        self._per_minute = per_minute
        self._stale_after = stale_after_seconds + STALE_MARGIN_SECONDS
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self._concurrency > 0 or self._per_minute > 0

    def admit(self, job_id: str) -> None:
        """Take a slot for the job (or keep the one it holds) and count one submit this minute.

        Raises AdmissionDeferred when either limit is reached; a slot taken here is then given back.
        """
        newly_taken = self._take_slot(job_id) if self._concurrency > 0 else False
        if self._per_minute > 0:
            try:
                self._count_submit()
            except AdmissionDeferred:
                if newly_taken:
                    self.release(job_id)
                raise

    def release(self, job_id: str) -> None:
        """Give the job's slot back (a no-op when it holds none: released already, or never admitted)."""
        if self._concurrency > 0:
            self._remove_slot(job_id, "attribute_exists(slots.#job)")

    def _remove_slot(self, job_id: str, condition: str, values: dict[str, Any] | None = None) -> None:
        """Remove the job's slot if ``condition`` holds (else nothing changes)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": SLOTS_KEY}},
            "UpdateExpression": "REMOVE slots.#job",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#job": job_id},
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            self._client.update_item(**request)
        except self._client.exceptions.ConditionalCheckFailedException:
            pass

    def in_flight(self) -> dict[str, float]:
        """The slots taken now: job id → when (for tests and operators)."""
        return self._slots() or {}

    def _slots(self) -> dict[str, float] | None:
        """The slots map, or None before the first job ever created it."""
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": SLOTS_KEY}}, ConsistentRead=True
        ).get("Item")
        if item is None or "slots" not in item:
            return None
        return {job: float(value["N"]) for job, value in item["slots"]["M"].items()}

    def _take_slot(self, job_id: str) -> bool:
        """True when the slot is new, False when the job held it already."""
        for _ in range(3):  # at most: create the item, reclaim stale slots, take
            try:
                updated = self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": SLOTS_KEY}},
                    UpdateExpression="SET slots.#job = if_not_exists(slots.#job, :now)",
                    ConditionExpression=(
                        "attribute_exists(slots) AND (attribute_exists(slots.#job) OR size(slots) < :limit)"
                    ),
                    ExpressionAttributeNames={"#job": job_id},
                    ExpressionAttributeValues={
                        ":now": {"N": str(int(self._clock()))},
                        ":limit": {"N": str(self._concurrency)},
                    },
                    ReturnValues="ALL_OLD",
                )
            except self._client.exceptions.ConditionalCheckFailedException:
                slots = self._slots()
                if slots is None:
                    self._create()
                elif len(slots) >= self._concurrency and not self._reclaim_stale(slots):
                    break  # full of live slots (else: one was freed meanwhile, try again)
            else:
                held = updated.get("Attributes", {}).get("slots", {}).get("M", {})
                return job_id not in held
        raise AdmissionDeferred(
            f"WaveSpeed concurrency: {self._concurrency} predictions already in flight", retry_after=5
        )

    def _create(self) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={"pk": {"S": SLOTS_KEY}, "slots": {"M": {}}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            pass  # another container created it

    def _reclaim_stale(self, slots: dict[str, float]) -> bool:
        """Remove slots older than a job can live (each only if still that old); True when any was."""
        oldest_allowed = self._clock() - self._stale_after
        stale = {job: taken for job, taken in slots.items() if taken < oldest_allowed}
        for job, taken in stale.items():  # one released meanwhile leaves room all the same
            self._remove_slot(job, "slots.#job = :taken", {":taken": {"N": str(int(taken))}})
        return bool(stale)

    def _count_submit(self) -> None:
        retry_after = count_in_window(
            self._client, table=self._table, key=SLOTS_KEY, limit=self._per_minute, now=self._clock()
        )
        if retry_after is not None:
            raise AdmissionDeferred(
                f"WaveSpeed submits per minute: {self._per_minute} used this minute", retry_after=retry_after
            )
