"""Per-tenant request rate limit (HTTP APIs have no usage plans): a fixed one-minute window counted
in the jobs table (``RATE#<tenant>#<minute>``, expiring through the table's TTL)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from maskgate.errors import RateLimited

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

WINDOW_SECONDS = 60


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
        now = self._clock()
        window = int(now // WINDOW_SECONDS)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"RATE#{tenant}#{window}"}},
                UpdateExpression="ADD hits :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(self._limit)},
                    ":expires": {"N": str((window + 2) * WINDOW_SECONDS)},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            retry_after = max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)
            raise RateLimited(
                f"over {self._limit} requests per minute for this tenant; retry after {retry_after} s",
                retry_after=retry_after,
            ) from exc
