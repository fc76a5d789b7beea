"""A tenant's events that are about no job (``endpoint.disabled``), kept so their retries send the
same bytes: one item ``EVENT#<webhook-id>`` in the jobs table with the tenant, the type and the body,
expiring with the attempt log that lists their attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from maskgate.errors import EventNotFound

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True)
class TenantEvent:
    webhook_id: str
    tenant: str
    type: str
    body: str


@dataclass(frozen=True)
class TenantEvents:
    table: str
    client: DynamoDBClient
    retention_days: int = 30

    def keep(self, event: TenantEvent, *, at: datetime) -> None:
        """Keep the event (the same webhook-id again: the same event, kept once)."""
        expires = at + timedelta(days=self.retention_days)
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"EVENT#{event.webhook_id}"},
                "event_tenant": {"S": event.tenant},
                "event_type": {"S": event.type},
                "body": {"S": event.body},
                "expires_at": {"N": str(int(expires.timestamp()))},
            },
        )

    def get(self, webhook_id: str) -> TenantEvent:
        """The kept event; EventNotFound if there is none."""
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"EVENT#{webhook_id}"}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            raise EventNotFound(f"no event {webhook_id}")
        return TenantEvent(
            webhook_id=webhook_id,
            tenant=item["event_tenant"]["S"],
            type=item["event_type"]["S"],
            body=item["body"]["S"],
        )
