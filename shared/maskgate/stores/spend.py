"""The spend ledger: every tenant's monthly spend against its cap, one item per tenant and UTC month.

``USAGE#<tenant>#<YYYY-MM>`` holds counters in micro-dollars: ``committed`` (reserved + spent, what
the cap is checked against), ``reserved`` and ``spent``, and counts of jobs (accepted, submitted,
released, by outcome, cache hits, refusals). A job's price moves through it once, and the job item
says where it is (``charge``), changed in the same transaction as the counters, so no retry, crash or
race can count it twice or lose it:

- **reserve**, with the job's own creation (``JobStore.create(job, also=[reserve_item])``, one
  transaction): ``committed + price <= cap`` or nothing is written, so concurrent requests never
  overshoot the cap;
- **settle** (``reserved`` → ``spent``) when WaveSpeed is called, in the transaction that records the
  job's prediction when it can (one write of the job for both);
- **release** (``committed`` and ``reserved`` given back) when the job ends before any submit: refused,
  canceled, failed at intake, or answered from the result cache (``release(job, cache_hit=True)``).

A job's price is counted in the month it was created. ``finish`` settles or releases whatever a
finished job still holds; the reconcile sweep calls it for a job whose step crashed in between.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from maskgate.contracts.job import Job, JobStatus, utcnow
from maskgate.contracts.limits import month_of
from maskgate.stores.jobs import PREDICTION_CONDITION, PREDICTION_NAMES, PREDICTION_SETS, prediction_values

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

USAGE_PREFIX = "USAGE#"
CONFLICT_TRIES = 5  # a transaction that met another on the same item is tried again, jittered
USAGE_RETENTION_SECONDS = 400 * 24 * 3600  # a month's usage is kept for a year and a bit
COUNTERS = (
    "committed",
    "reserved",
    "spent",
    "accepted",
    "submitted",
    "released",
    "succeeded",
    "failed",
    "canceled",
    "cache_hits",
    "cache_saved",
    "quota_rejections",
    "cap_rejections",
)
OUTCOMES = {JobStatus.SUCCEEDED: "succeeded", JobStatus.FAILED: "failed", JobStatus.CANCELED: "canceled"}


def usage_key(tenant: str, month: str) -> dict[str, Any]:
    return {"pk": {"S": f"{USAGE_PREFIX}{tenant}#{month}"}}


class SpendLedger:
    def __init__(
        self,
        *,
        table: str,
        client: DynamoDBClient,
        now: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table
        self._client = client
        self._now = now
        self._sleep = sleep

    def reserve_item(self, job: Job, *, cap_micros: int | None) -> dict[str, Any]:
        """The transaction item that reserves the job's price in its month, only if it fits the cap."""
        price = job.price_micros or 0
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": usage_key(job.tenant, month_of(job.created_at)),
            "UpdateExpression": "ADD committed :p, reserved :p, accepted :one SET expires_at = :exp",
            "ExpressionAttributeValues": {
                ":p": {"N": str(price)},
                ":one": {"N": "1"},
                ":exp": {"N": str(int(job.created_at.timestamp()) + USAGE_RETENTION_SECONDS)},
            },
        }
        if cap_micros is not None and cap_micros < price:  # not even one job fits: a condition never met
            update["ConditionExpression"] = "attribute_exists(pk) AND attribute_not_exists(pk)"
        elif cap_micros is not None:
            update["ConditionExpression"] = "attribute_not_exists(committed) OR committed <= :room"
            update["ExpressionAttributeValues"][":room"] = {"N": str(cap_micros - price)}
        return {"Update": update}

    def reserve_refused(self, exc: Exception) -> bool:
        """Whether a create's transaction was refused by its reservation (the cap), not by the job."""
        return _reasons(self._client, exc)[1:2] == ["ConditionalCheckFailed"]

    def conflicted(self, exc: Exception) -> bool:
        """Whether a transaction was canceled only because another one held an item (DynamoDB's
        ``TransactionConflict``, when requests race for one tenant's month): it may be tried again."""
        return "TransactionConflict" in _reasons(self._client, exc)

    def settle(self, job: Job, *, prediction_id: str | None = None) -> bool:
        """Move a reserved price to spent (WaveSpeed is being paid); False if it was not reserved.

        With ``prediction_id``, the same transaction records the job's prediction (queued → submitted,
        as ``JobStore.record_prediction``), only if the job is queued with no prediction: one write of
        the job instead of two. False then also when the job was not queued for it (the caller records
        it on its own, as before)."""
        if prediction_id is None:
            return self._move(job, "spent", "ADD reserved :neg, spent :p, submitted :one")
        recorded = _Recorded(
            sets=", " + PREDICTION_SETS,
            condition=" AND " + PREDICTION_CONDITION,
            names=dict(PREDICTION_NAMES),
            values=prediction_values(prediction_id, self._now()),
        )
        return self._move(job, "spent", "ADD reserved :neg, spent :p, submitted :one", also=recorded)

    def release(self, job: Job, *, cache_hit: bool = False) -> bool:
        """Give a reserved price back (the job ends before any submit; ``cache_hit``: answered from the
        result cache, which also counts the hit and the dollars it saved); False if not reserved."""
        update = "ADD committed :neg, reserved :neg, released :one"
        if cache_hit:
            update += ", cache_hits :one, cache_saved :p"
        return self._move(job, "released", update)

    def finish(self, job: Job) -> None:
        """A finished job: settle or release what it still holds, and count its outcome (once: the
        counters move with the job's own ``charge``, or, once it was settled, on its terminal write)."""
        outcome = OUTCOMES.get(job.status)
        if outcome is None or job.charge is None:
            return
        submitted = job.prediction_id is not None or job.submit_attempt is not None
        if job.charge == "reserved" and submitted:
            self.settle(job)
        elif job.charge == "reserved":
            update = f"ADD committed :neg, reserved :neg, released :one, {outcome} :one"
            if getattr(job, "cache", None) == "hit":  # answered from the result cache: nothing was paid
                update += ", cache_hits :one, cache_saved :p"
            self._move(job, "released", update)
            return
        self.count(job.tenant, month_of(job.created_at), outcome)

    def count(self, tenant: str, month: str, counter: str, by: int = 1) -> None:
        """Add to one of the month's counters (refusals, outcomes of jobs already settled)."""
        self._client.update_item(
            TableName=self._table,
            Key=usage_key(tenant, month),
            UpdateExpression="ADD #c :by SET expires_at = if_not_exists(expires_at, :exp)",
            ExpressionAttributeNames={"#c": counter},
            ExpressionAttributeValues={
                ":by": {"N": str(by)},
                ":exp": {"N": str(int(self._now().timestamp()) + USAGE_RETENTION_SECONDS)},
            },
        )

    def counters(self, tenant: str, month: str, *, consistent: bool = True) -> dict[str, Any]:
        """The month's counters (0 where none was counted) and when its threshold was notified."""
        item = self._client.get_item(
            TableName=self._table, Key=usage_key(tenant, month), ConsistentRead=consistent
        ).get("Item", {})
        found: dict[str, Any] = {name: int(item.get(name, {}).get("N", "0")) for name in COUNTERS}
        found["threshold_at"] = item.get("threshold_at", {}).get("S")
        return found

    def mark_threshold(self, tenant: str, month: str) -> bool:
        """Mark the month's spend threshold as notified; False if it was already (one notice a month)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=usage_key(tenant, month),
                UpdateExpression="SET threshold_at = :at",
                ConditionExpression="attribute_not_exists(threshold_at)",
                ExpressionAttributeValues={":at": {"S": self._now().isoformat()}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _move(self, job: Job, to: str, usage_update: str, *, also: _Recorded | None = None) -> bool:
        """In one transaction: the job's charge from reserved to ``to`` (and ``also``'s fields, under
        its condition), and its month's counters. False when it was not reserved (moved already), or
        kept meeting other transactions (then the job's end, or the reconcile sweep, moves it)."""
        for attempt in range(CONFLICT_TRIES):
            try:
                self._transact_move(job, to, usage_update, also or _Recorded())
            except self._client.exceptions.TransactionCanceledException as exc:
                if not self.conflicted(exc):
                    return False  # settled or released already (a retry, or a concurrent step)
                self._sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 (jitter, not a secret)
            else:
                return True
        return False

    def _transact_move(self, job: Job, to: str, usage_update: str, also: _Recorded) -> None:
        price = job.price_micros or 0
        values = {":p": {"N": str(price)}, ":neg": {"N": str(-price)}, ":one": {"N": "1"}}
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"pk": {"S": f"JOB#{job.id}"}},
                        "UpdateExpression": "SET #charge = :to" + also.sets,
                        "ConditionExpression": "#charge = :reserved" + also.condition,
                        "ExpressionAttributeNames": {"#charge": "charge", **also.names},
                        "ExpressionAttributeValues": {
                            ":to": {"S": to},
                            ":reserved": {"S": "reserved"},
                            **also.values,
                        },
                    }
                },
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": usage_key(job.tenant, month_of(job.created_at)),
                        "UpdateExpression": usage_update,
                        # DynamoDB refuses values the expression does not use
                        "ExpressionAttributeValues": {
                            k: v for k, v in values.items() if k in usage_update.replace(",", " ").split()
                        },
                    }
                },
            ]
        )


@dataclass(frozen=True)
class _Recorded:
    """More of the job's fields for a move's write of the job, and the condition they need."""

    sets: str = ""
    condition: str = ""
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


def _reasons(client: DynamoDBClient, exc: Exception) -> list[str]:
    """The cancellation reason of each item of a canceled transaction (empty for any other error)."""
    if not isinstance(exc, client.exceptions.TransactionCanceledException):
        return []
    return [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])]
