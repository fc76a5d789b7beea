"""Tenants, their API keys and their webhook secrets, in the jobs table.

Keys are ``mg_`` + 32 random bytes (urlsafe); only their SHA-256 is stored (``KEY#<hash>``, with the
tenant, a visible prefix, and created / last-used / expiry / revoked times). The tenant item
(``TENANT#<id>``) holds the webhook secret, for 24 h after a rotation the old one too, and one
``key#<key id>`` attribute per key so its keys can be listed without scanning the table.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from maskgate.contracts.endpoints import Endpoint
from maskgate.contracts.job import utcnow
from maskgate.errors import KeyNotFound, Unauthorized
from maskgate.stores.endpoints import endpoints_of
from maskgate.webhooks.signing import ROTATION_OVERLAP, new_secret

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

KEY_PREFIX = "mg_"
KEY_ATTRIBUTE = "key#"
LAST_USED_RESOLUTION = timedelta(hours=1)  # last-used is written at most hourly per key


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


class KeyRecord(BaseModel):
    """What is kept about a key: never the key itself, only its hash and a visible prefix."""

    model_config = ConfigDict(frozen=True)
    key_id: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    hash: str = Field(default="", repr=False, exclude=True)


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

    def create_key(self, tenant: str, *, expires_in: timedelta | None = None) -> ApiKey:
        """A new API key for the tenant (creating the tenant and its secret if needed)."""
        self.ensure_tenant(tenant)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        now = self._now()
        record = KeyRecord(
            key_id="key_" + secrets.token_hex(8),
            prefix=key[:8],
            created_at=now,
            expires_at=now + expires_in if expires_in else None,
            hash=hash_key(key),
        )
        item = {
            "pk": {"S": f"KEY#{record.hash}"},
            "key_tenant": {"S": tenant},
            "key_id": {"S": record.key_id},
        }
        if record.expires_at:  # the table's TTL removes it too, days later
            item["expires_at"] = {"N": str(int(record.expires_at.timestamp()))}
        self._client.put_item(TableName=self._table, Item=item)
        self._index(tenant, record)
        return ApiKey(key=key, key_id=record.key_id, tenant=tenant)

    def list_keys(self, tenant: str) -> list[KeyRecord]:
        """The tenant's keys (never the keys themselves), newest first, with their last use."""
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"TENANT#{tenant}"}}, ConsistentRead=True
        ).get("Item", {})
        records = []
        for name, value in item.items():
            if not name.startswith(KEY_ATTRIBUTE):
                continue
            record = KeyRecord.model_validate_json(value["M"]["record"]["S"])
            record = record.model_copy(update={"hash": value["M"]["hash"]["S"]})
            used = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": f"KEY#{record.hash}"}},
                ProjectionExpression="last_used_at",
            ).get("Item", {})
            if "last_used_at" in used:
                record = record.model_copy(
                    update={"last_used_at": datetime.fromisoformat(used["last_used_at"]["S"])}
                )
            records.append(record)
        return sorted(records, key=lambda r: r.created_at, reverse=True)

    def revoke_key(self, tenant: str, key_id: str) -> KeyRecord:
        """Revoke one of the tenant's keys by its id; KeyNotFound if the tenant has no such key."""
        found = [r for r in self.list_keys(tenant) if r.key_id == key_id]
        if not found:
            raise KeyNotFound(f"tenant {tenant} has no key {key_id}")
        at = self._now()
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"KEY#{found[0].hash}"}},
            UpdateExpression="SET revoked_at = :at",
            ExpressionAttributeValues={":at": {"S": at.isoformat()}},
        )
        revoked = found[0].model_copy(update={"revoked_at": at})
        self._index(tenant, revoked)
        return revoked

    def tenant_for_key(self, api_key: str) -> str:
        """The tenant owning the key; Unauthorized if none does (unknown, revoked or expired)."""
        if not api_key.startswith(KEY_PREFIX):
            raise Unauthorized("the API key is not valid")
        key = {"pk": {"S": f"KEY#{hash_key(api_key)}"}}
        item = self._client.get_item(TableName=self._table, Key=key).get("Item")
        now = self._now()
        expired = (
            item is not None and "expires_at" in item and int(item["expires_at"]["N"]) <= now.timestamp()
        )
        if item is None or "revoked_at" in item or expired:
            raise Unauthorized("the API key is not valid")
        last = item.get("last_used_at", {}).get("S")
        if last is None or now - datetime.fromisoformat(last) > LAST_USED_RESOLUTION:
            self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET last_used_at = :at",
                ExpressionAttributeValues={":at": {"S": now.isoformat()}},
            )
        return str(item["key_tenant"]["S"])

    def _index(self, tenant: str, record: KeyRecord) -> None:
        value: dict[str, Any] = {"M": {"record": {"S": record.model_dump_json()}, "hash": {"S": record.hash}}}
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"TENANT#{tenant}"}},
            UpdateExpression="SET #key = :record",
            ExpressionAttributeNames={"#key": KEY_ATTRIBUTE + record.key_id},
            ExpressionAttributeValues={":record": value},
        )

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
        return self.webhook_targets(tenant)[0]

    def webhook_targets(self, tenant: str) -> tuple[list[str], list[Endpoint]]:
        """In one consistent read: the tenant's signing secrets (as ``webhook_secrets``) and its
        registered webhook endpoints."""
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"TENANT#{tenant}"}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return [self.ensure_tenant(tenant)], []
        found = [item["webhook_secret"]["S"]]
        previous_until = item.get("previous_until", {}).get("S")
        if previous_until and datetime.fromisoformat(previous_until) > self._now():
            found.append(item["previous_secret"]["S"])
        return found, endpoints_of(item)
