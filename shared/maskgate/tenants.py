"""Tenants, their API keys and their webhook secrets, in the jobs table.

Keys are ``mg_`` + 32 random bytes (urlsafe); only their SHA-256 is stored (``KEY#<hash>``).
A tenant item (``TENANT#<id>``) holds the webhook secret and, for 24 h after a rotation, the old one.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from maskgate.errors import Unauthorized
from maskgate.jobs import utcnow
from maskgate.webhooks import new_secret

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

KEY_PREFIX = "mg_"
ROTATION_OVERLAP = timedelta(hours=24)


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    key: str  # shown once, at creation
    key_id: str
    tenant: str


class TenantStore:
    def __init__(self, *, table: str, client: DynamoDBClient, now: Callable[[], datetime] = utcnow) -> None:
        self._table = table
        self._client = client
        self._now = now

    def create_key(self, tenant: str) -> ApiKey:
        """A new API key for the tenant (creating the tenant and its secret if needed)."""
        self.ensure_tenant(tenant)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(8)
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": f"KEY#{hash_key(key)}"},
                "key_id": {"S": key_id},
                "key_tenant": {"S": tenant},
                "prefix": {"S": key[:8]},
                "created_at": {"S": self._now().isoformat()},
            },
        )
        return ApiKey(key=key, key_id=key_id, tenant=tenant)

    def tenant_for_key(self, api_key: str) -> str:
        """The tenant owning the key; Unauthorized if none does."""
        if not api_key.startswith(KEY_PREFIX):
            raise Unauthorized("the API key is not valid")
        found = self._client.get_item(TableName=self._table, Key={"pk": {"S": f"KEY#{hash_key(api_key)}"}})
        item = found.get("Item")
        if item is None or "revoked_at" in item:
            raise Unauthorized("the API key is not valid")
        return item["key_tenant"]["S"]

    def ensure_tenant(self, tenant: str, *, secret: str | None = None) -> str:
        """Create the tenant with a webhook secret unless it exists; return its current secret."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"TENANT#{tenant}"},
                    "webhook_secret": {"S": secret or new_secret()},
                    "created_at": {"S": self._now().isoformat()},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            pass
        return self.webhook_secrets(tenant)[0]

    def rotate_secret(self, tenant: str) -> tuple[str, datetime]:
        """A new webhook secret; the old one keeps signing alongside until the returned time (24 h)."""
        current = self.ensure_tenant(tenant)
        fresh, until = new_secret(), self._now() + ROTATION_OVERLAP
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"TENANT#{tenant}"}},
            UpdateExpression="SET webhook_secret = :new, previous_secret = :old, previous_until = :until",
            ConditionExpression="webhook_secret = :old",  # two rotations racing: one wins, none is lost
            ExpressionAttributeValues={
                ":new": {"S": fresh},
                ":old": {"S": current},
                ":until": {"S": until.isoformat()},
            },
        )
        return fresh, until

    def webhook_secrets(self, tenant: str) -> list[str]:
        """The secrets that sign this tenant's webhooks now: current first, then a rotated-out one."""
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"TENANT#{tenant}"}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return [self.ensure_tenant(tenant)]
        found = [item["webhook_secret"]["S"]]
        previous_until = item.get("previous_until", {}).get("S")
        if previous_until and datetime.fromisoformat(previous_until) > self._now():
            found.append(item["previous_secret"]["S"])
        return found
