"""WaveSpeed callbacks already handled, in the jobs table: a replayed callback changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from maskgate.contracts.job import utcnow

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class CallbackLog:
    """Webhook ids already handled (``CALLBACK#<id>``, kept a day) so a replay changes nothing.

    An id is marked only after the callback was acted on: one that failed midway (a throttled write,
    a crash) is acted on again when WaveSpeed retries it."""

    def __init__(self, *, table: str, client: DynamoDBClient, now: Callable[[], datetime] = utcnow) -> None:
        self._table = table
        self._client = client
        self._now = now

    def handled(self, msg_id: str) -> bool:
        found = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"CALLBACK#{msg_id}"}}, ConsistentRead=True
        )
        return "Item" in found

    def mark(self, msg_id: str) -> None:
        expires = int((self._now() + timedelta(days=1)).timestamp())
        self._client.put_item(
            TableName=self._table,
            Item={"pk": {"S": f"CALLBACK#{msg_id}"}, "expires_at": {"N": str(expires)}},
        )
