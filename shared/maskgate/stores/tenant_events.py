"""A tenant's events that are about no job (``endpoint.disabled``, ``tenant.spend_threshold``), kept so
their retries send the same bytes: one item ``EVENT#<webhook-id>`` in the jobs table with the tenant,
the type and the body, expiring with the attempt log that lists their attempts. The reconcile sweep
finds the recent ones through the ``created-day`` index, in partitions of their own
(``events#<YYYY-MM-DD>``; a job's is the bare day)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from maskgate.errors import EventNotFound
from maskgate.stores.day_index import created_between

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


DAY_PREFIX = "events#"


@dataclass(frozen=True)
class TenantEvent:
    webhook_id: str
    tenant: str
    type: str
    body: str
    at: datetime | None = None  # when it was kept (read from the table; None on one not kept yet)
    told: tuple[str, ...] = ()  # the endpoints it was sent to, as kept (read from the table)


@dataclass(frozen=True)
class TenantEvents:
    table: str
    client: DynamoDBClient
    retention_days: int = 30

    def keep(
        self, event: TenantEvent, *, at: datetime, told: Iterable[str] = (), first: bool = False
    ) -> bool:
        """Keep the event, with the endpoints it is being sent to (the same webhook-id again: the same
        event, kept once, with the endpoints of its latest telling). ``first``: only if no event of
        that webhook-id is kept (False then: the one kept stays)."""
        expires = at + timedelta(days=self.retention_days)
        request: dict[str, Any] = {
            "TableName": self.table,
            "Item": {
                "pk": {"S": f"EVENT#{event.webhook_id}"},
                "event_tenant": {"S": event.tenant},
                "event_type": {"S": event.type},
                "body": {"S": event.body},
                "created_day": {"S": DAY_PREFIX + at.date().isoformat()},
                "created_at": {"S": at.isoformat().replace("+00:00", "Z")},
                "told": {"S": json.dumps(sorted(told))},
                "expires_at": {"N": str(int(expires.timestamp()))},
            },
        }
        if first:
            request["ConditionExpression"] = "attribute_not_exists(pk)"
        try:
            self.client.put_item(**request)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def kept(self, days: Iterable[str], bounds: tuple[str, str]) -> list[TenantEvent]:
        """The events kept on ``days`` (``YYYY-MM-DD``) with ``created_at`` between the two bounds."""
        keys = created_between(self.client, self.table, (DAY_PREFIX + day for day in days), bounds)
        ids = [key.removeprefix("EVENT#") for key in keys]
        found: list[TenantEvent] = []
        for webhook_id in dict.fromkeys(ids):
            try:
                found.append(self.get(webhook_id))
            except EventNotFound:  # expired since the index listed it
                continue
        return found

    def get(self, webhook_id: str) -> TenantEvent:
        """The kept event; EventNotFound if there is none."""
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"EVENT#{webhook_id}"}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            raise EventNotFound(f"no event {webhook_id}")
        kept_at = item.get("created_at", {}).get("S")  # kept before the sweep looked for events: none
        return TenantEvent(
            webhook_id=webhook_id,
            tenant=item["event_tenant"]["S"],
            type=item["event_type"]["S"],
            body=item["body"]["S"],
            at=datetime.fromisoformat(kept_at) if kept_at else None,
            told=tuple(json.loads(item["told"]["S"])) if "told" in item else (),
        )
