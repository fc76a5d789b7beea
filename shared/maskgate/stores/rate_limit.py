"""Rates kept in the jobs table, expiring through its TTL: fixed one-minute windows (``<key>#<minute>``)
for the per-tenant request rate limit (HTTP APIs have no usage plans, ``RATE#<tenant>``) and
WaveSpeed's submits per minute (maskgate.stores.admission); and the spacing of sends to a throttled
webhook endpoint (``Throttle``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from maskgate.errors import RateLimited

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

WINDOW_SECONDS = 60


def count_in_window(client: DynamoDBClient, *, table: str, key: str, limit: int, now: float) -> int | None:
    """Count one hit in ``key``'s current one-minute window (``<key>#<minute>``); None when it fits,
    else the seconds until the next window (nothing is counted then)."""
    window = int(now // WINDOW_SECONDS)
    try:
        client.update_item(
            TableName=table,
            Key={"pk": {"S": f"{key}#{window}"}},
            UpdateExpression="ADD hits :one SET expires_at = :expires",
            ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":limit": {"N": str(limit)},
                ":expires": {"N": str((window + 2) * WINDOW_SECONDS)},
            },
        )
    except client.exceptions.ConditionalCheckFailedException:
        return max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)
    return None


class RateLimiter:
    def __init__(
        self, *, table: str, client: DynamoDBClient, per_minute: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._table = table
        self._client = client
        self._limit = per_minute
        self._clock = clock

    def hit(self, tenant: str) -> None:
        """Count one request; RateLimited (with the seconds until the next window) when over the limit."""
        key = f"RATE#{tenant}"
        retry_after = count_in_window(
            self._client, table=self._table, key=key, limit=self._limit, now=self._clock()
        )
        if retry_after is not None:
            raise RateLimited(
                f"over {self._limit} requests per minute for this tenant; retry after {retry_after} s",
                retry_after=retry_after,
            )


class Throttle:
    """Spaces sends to a key (a registered webhook endpoint) at most ``per_second`` apart: each send
    takes the next free instant (``THROTTLE#<key>``, one conditional write), so no one-second span
    ever holds more than ``per_second`` sends, from however many invocations at once. A send that
    has to wait learns how long from the refused write itself."""

    def __init__(self, *, table: str, client: DynamoDBClient, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._client = client
        self._clock = clock

    def take(self, key: str, *, per_second: int) -> float | None:
        """Take a send now: None when it is free, else the seconds until it will be (nothing taken)."""
        now = self._clock()
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"THROTTLE#{key}"}},
                UpdateExpression="SET next_at = :next, expires_at = :expires",
                ConditionExpression="attribute_not_exists(next_at) OR next_at <= :now",
                ExpressionAttributeValues={
                    ":now": {"N": repr(now)},
                    ":next": {"N": repr(now + 1 / per_second)},
                    ":expires": {"N": str(int(now) + 3600)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException as taken:
            # the refusal carries the item as it was: when the next send is free, without a read
            item: dict[str, Any] = dict(taken.response.get("Item") or {})  # type: ignore[call-overload]
            next_at = float(item.get("next_at", {}).get("N", now + 1 / per_second))
            return max(0.001, next_at - now)
        return None
