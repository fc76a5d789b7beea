"""BatchGetItem on the jobs table, to the end: what DynamoDB leaves unprocessed (throttled) is asked
for again after a growing backoff, as DynamoDB asks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from maskgate.errors import MaskgateError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

BATCH_KEYS = 100  # BatchGetItem's limit
TRIES = 8


def batch_get(
    client: DynamoDBClient,
    table: str,
    keys: list[dict[str, Any]],
    *,
    consistent: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict[str, Any]]:
    """The items of these keys (at most ``BATCH_KEYS``) that exist, in no given order; MaskgateError
    when DynamoDB keeps some unprocessed through every try."""
    request: dict[str, Any] = {"Keys": keys, **({"ConsistentRead": True} if consistent else {})}
    pending: Any = {table: request}
    found: list[dict[str, Any]] = []
    for attempt in range(TRIES):
        answer = client.batch_get_item(RequestItems=pending)
        found += answer.get("Responses", {}).get(table, [])
        pending = answer.get("UnprocessedKeys")
        if not pending:
            return found
        sleep(min(0.05 * 2**attempt, 2.0))
    raise MaskgateError(f"DynamoDB kept items of {table} unprocessed in BatchGetItem")
