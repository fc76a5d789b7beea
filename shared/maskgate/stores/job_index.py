"""The reconcile sweep's reads of the jobs table: the ``created-day`` index, batched reads, and the
names of its own restarts and recovery units recorded on a job."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from maskgate.contracts.job import TERMINAL, Job
from maskgate.stores.batch import BATCH_KEYS, batch_get
from maskgate.stores.day_index import created_between
from maskgate.stores.jobs import RETRYING_DAYS, RETRYING_PREFIX, job_from_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True)
class Seen:
    """A job as the sweep read it, with the names of the sweep's own restart and delivery unit."""

    job: Job
    execution: str | None = None
    delivery_unit: str | None = None

    @property
    def execution_name(self) -> str:
        return self.execution or self.job.id


class JobIndex:
    """The sweep's reads and its own attributes on the jobs table."""

    def __init__(
        self, *, table: str, client: DynamoDBClient, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._table = table
        self._client = client
        self._sleep = sleep

    def ids(self, days: Iterable[str], bounds: tuple[str, str]) -> list[str]:
        """The ids of the jobs created on ``days`` between the two bounds."""
        keys = created_between(self._client, self._table, days, bounds)
        return [key.removeprefix("JOB#") for key in keys]

    def retrying(self, days: Iterable[str], bounds: tuple[str, str]) -> list[str]:
        """The ids of the jobs whose webhook was last retried on ``days`` between the two bounds."""
        keys = created_between(self._client, self._table, (RETRYING_DAYS + day for day in days), bounds)
        return [key.removeprefix(RETRYING_PREFIX) for key in keys]

    def read(self, job_ids: Iterable[str]) -> dict[str, Seen]:
        """Those jobs (the ones that exist), a BatchGetItem per hundred."""
        ids = list(dict.fromkeys(job_ids))
        seen: dict[str, Seen] = {}
        for start in range(0, len(ids), BATCH_KEYS):
            keys = [{"pk": {"S": f"JOB#{job_id}"}} for job_id in ids[start : start + BATCH_KEYS]]
            for item in batch_get(self._client, self._table, keys, sleep=self._sleep):
                one = _seen(item)
                seen[one.job.id] = one
        return seen

    def get(self, job_id: str) -> Seen | None:
        """The job, read consistently; None if it is gone."""
        found = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"JOB#{job_id}"}}, ConsistentRead=True
        )
        return _seen(found["Item"]) if "Item" in found else None

    def record(self, job_id: str, name: Literal["execution", "delivery_unit"], value: str) -> bool:
        """Name the job's restart (only while it is unfinished) or recovery unit; False if it could not."""
        condition, values = "attribute_exists(pk)", {":v": {"S": value}}
        if name == "execution":
            condition += " AND NOT #status IN (:t0, :t1, :t2)"
            values |= {f":t{i}": {"S": status.value} for i, status in enumerate(sorted(TERMINAL))}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"JOB#{job_id}"}},
                UpdateExpression="SET #name = :v",
                ConditionExpression=condition,
                ExpressionAttributeNames={
                    "#name": name,
                    **({"#status": "status"} if name == "execution" else {}),
                },
                ExpressionAttributeValues=values,
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _seen(item: dict[str, Any]) -> Seen:
    return Seen(
        job=job_from_item(item),
        execution=item.get("execution", {}).get("S"),
        delivery_unit=item.get("delivery_unit", {}).get("S"),
    )
