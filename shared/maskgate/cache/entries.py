"""Cache entries in the jobs table: per tenant and request key, the one job that computes (or computed)
the results, ``CACHE#<tenant>#<key>`` → ``job_id``, ``claimed_at``, ``expires_at``.

An entry is taken with one conditional write when a job is about to be submitted, so of identical
requests in flight exactly one pays; the others find it and wait for its job, or reuse its results.
There is no second write when the job succeeds: whether an entry holds results is its job's status.

An entry never outlives the results it points at: it expires ``lifetime`` after it was taken (the
results' lifetime less a margin), and its job's masks are written after that, under ``results/``,
whose lifecycle rule and the finished job's TTL both keep them at least the results' lifetime. Reads
compare ``expires_at`` themselves: DynamoDB's TTL deletes expired items only eventually.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from maskgate.contracts.job import utcnow

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# A hit copies the results within its invocation (a Lambda runs at most 15 minutes): an entry is
# retired this long before its results may go, so no hit ever finds them gone.
MARGIN = timedelta(hours=1)
_FREE = "attribute_not_exists(pk) OR expires_at < :now"


def entry_key(tenant: str, key: str) -> dict[str, Any]:
    return {"pk": {"S": f"CACHE#{tenant}#{key}"}}


class CacheEntries:
    """Who holds each request key of each tenant, and whether a tenant uses the cache at all."""

    def __init__(
        self,
        *,
        table: str,
        client: DynamoDBClient,
        results_days: int,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._table = table
        self._client = client
        self._lifetime = timedelta(days=results_days) - MARGIN
        self._now = now

    def claim(self, tenant: str, key: str, job_id: str) -> str | None:
        """Take the key for ``job_id`` unless another job holds a live entry: None when it is this
        job's now (or was already), else the holder's job id. One write either way."""
        return self._put(tenant, key, job_id, _FREE + " OR job_id = :me", {":me": {"S": job_id}})

    def take_over(self, tenant: str, key: str, job_id: str, *, holder: str) -> str | None:
        """Take the key from ``holder`` (its job failed, was canceled, or its results are gone): None
        when taken, else whoever took it first."""
        return self._put(tenant, key, job_id, _FREE + " OR job_id = :holder", {":holder": {"S": holder}})

    def _put(self, tenant: str, key: str, job_id: str, condition: str, values: dict[str, Any]) -> str | None:
        now = self._now()
        item = {
            **entry_key(tenant, key),
            "job_id": {"S": job_id},
            "claimed_at": {"S": now.isoformat()},
            "expires_at": {"N": str(int((now + self._lifetime).timestamp()))},
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeValues={":now": {"N": str(int(now.timestamp()))}, **values},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            old: Any = exc.response.get("Item") or self._read(tenant, key)
            return str(old["job_id"]["S"]) if old else None
        return None

    def _read(self, tenant: str, key: str) -> dict[str, Any] | None:
        found = self._client.get_item(TableName=self._table, Key=entry_key(tenant, key), ConsistentRead=True)
        return found.get("Item")

    def holder(self, tenant: str, key: str) -> str | None:
        """The job holding a live entry for the key, if any (read only: for tests and previews)."""
        item = self._read(tenant, key)
        if item is None or int(item["expires_at"]["N"]) < self._now().timestamp():
            return None
        return str(item["job_id"]["S"])

    def enabled_for(self, tenant: str) -> bool:
        """Whether the tenant uses the cache: its ``cache_enabled`` attribute, true when unset."""
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"TENANT#{tenant}"}},
            ProjectionExpression="cache_enabled",
        ).get("Item", {})
        return bool(item.get("cache_enabled", {}).get("BOOL", True))
