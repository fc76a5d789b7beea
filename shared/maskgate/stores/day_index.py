"""The jobs table's ``created-day`` index (KEYS_ONLY): the keys of what was created on given days
between two ``created_at`` bounds. Jobs are under the bare day (``YYYY-MM-DD``); tenant events and
the marks of retried jobs under partitions of their own (``events#YYYY-MM-DD``, ``retrying#…``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

INDEX = "created-day"


def created_between(
    client: DynamoDBClient, table: str, partitions: Iterable[str], bounds: tuple[str, str]
) -> list[str]:
    """The ``pk`` of each item in these ``created_day`` partitions with ``created_at`` between the two
    bounds, partition after partition, every page."""
    found: list[str] = []
    for partition in partitions:
        request: dict[str, Any] = {
            "TableName": table,
            "IndexName": INDEX,
            "KeyConditionExpression": "created_day = :day AND created_at BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":day": {"S": partition},
                ":low": {"S": bounds[0]},
                ":high": {"S": bounds[1]},
            },
        }
        while True:
            page = client.query(**request)
            found += [item["pk"]["S"] for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return found
