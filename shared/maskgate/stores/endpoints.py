"""A tenant's registered webhook endpoints, kept on the tenant's item in the jobs table.

Each endpoint is one attribute ``endpoint#<id>`` of ``TENANT#<tenant>`` holding its record as JSON,
so the one consistent read that fetches the tenant's webhook secrets for a job's event also yields
every endpoint the event fans out to: registering endpoints adds no read to a job. Every change is a
conditional write on that one attribute (a PATCH of a deleted endpoint is ``EndpointNotFound``; two
rotations racing: one wins). ``endpoint_count`` on the same item counts them, in the same writes that
add and remove one, so creates racing each other can never pass ``MAX_ENDPOINTS``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from maskgate.contracts.endpoints import Endpoint, EndpointCreate, EndpointUpdate, Signature
from maskgate.contracts.job import utcnow
from maskgate.errors import EndpointLimit, EndpointNotFound, InvalidTransition
from maskgate.webhooks.signing import ROTATION_OVERLAP, new_key_pair, new_secret

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ATTRIBUTE = "endpoint#"
MAX_ENDPOINTS = 20  # per tenant: the fan-out's first attempts run in one invocation


def endpoints_of(item: dict[str, Any]) -> list[Endpoint]:
    """The endpoints held by a tenant item (as DynamoDB returns it), oldest first."""
    found = [
        Endpoint.model_validate_json(value["S"]) for name, value in item.items() if name.startswith(ATTRIBUTE)
    ]
    return sorted(found, key=lambda e: (e.created_at, e.id))


def signing_key(signature: Signature) -> tuple[str, str | None]:
    """A fresh signing key for the scheme: v1, a ``whsec_`` secret (no public key); v1a, an Ed25519
    ``whsk_`` private key and its ``whpk_`` public key."""
    if signature == "v1a":
        return new_key_pair()
    return new_secret(), None


def _rekeyed(endpoint: Endpoint, *, previous: str, until: datetime) -> Endpoint:
    """A new signing key of the endpoint's scheme; ``previous`` keeps signing alongside until then."""
    secret, public_key = signing_key(endpoint.signature)
    return endpoint.model_copy(
        update={
            "secret": secret,
            "public_key": public_key,
            "previous_secret": previous,
            "previous_until": until,
        }
    )


class EndpointStore:
    def __init__(self, *, table: str, client: DynamoDBClient, now: Callable[[], datetime] = utcnow) -> None:
        self._table = table
        self._client = client
        self._now = now

    def _tenant_item(self, tenant: str) -> dict[str, Any]:
        return self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"TENANT#{tenant}"}}, ConsistentRead=True
        ).get("Item", {})

    def list(self, tenant: str) -> list[Endpoint]:
        """The tenant's endpoints, oldest first."""
        return endpoints_of(self._tenant_item(tenant))

    def get(self, tenant: str, endpoint_id: str) -> Endpoint:
        """One of the tenant's endpoints; EndpointNotFound if it has none of that id."""
        value = self._tenant_item(tenant).get(ATTRIBUTE + endpoint_id)
        if value is None:
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id}")
        return Endpoint.model_validate_json(value["S"])

    def create(self, tenant: str, request: EndpointCreate) -> Endpoint:
        """A new endpoint with a fresh signing key of its scheme (v1a: a key pair, its public key shown)."""
        now = self._now()
        secret, public_key = signing_key(request.signature)
        endpoint = Endpoint(
            id="ep_" + secrets.token_hex(8),
            tenant=tenant,
            **request.model_dump(),
            public_key=public_key,
            created_at=now,
            updated_at=now,
            secret=secret,
        )
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"TENANT#{tenant}"}},
                UpdateExpression="SET #e = :record, "
                "endpoint_count = if_not_exists(endpoint_count, :zero) + :one",
                ConditionExpression="attribute_not_exists(#e) AND "
                "(attribute_not_exists(endpoint_count) OR endpoint_count < :max)",
                ExpressionAttributeNames={"#e": ATTRIBUTE + endpoint.id},
                ExpressionAttributeValues={
                    ":record": {"S": endpoint.model_dump_json()},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                    ":max": {"N": str(MAX_ENDPOINTS)},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise EndpointLimit(f"a tenant may register at most {MAX_ENDPOINTS} webhook endpoints") from None
        return endpoint

    def update(self, tenant: str, endpoint_id: str, change: EndpointUpdate) -> Endpoint:
        """The fields sent, changed; enabling clears why it was disabled and its failing streak; a new
        ``signature`` scheme gets a key of its own, the old key signing alongside for 24 hours."""
        fields = change.model_dump(exclude_unset=True)
        if fields.get("enabled"):
            fields |= {"disabled_at": None, "disabled_reason": None, "disabled_notice_pending": False}
        until = self._now() + ROTATION_OVERLAP

        def changed(current: Endpoint) -> Endpoint:
            updated = current.model_copy(update=fields)
            if updated.signature == current.signature:
                return updated
            return _rekeyed(updated, previous=current.secret, until=until)

        updated = self._changed(tenant, endpoint_id, changed)
        if fields.get("enabled"):  # its failing streak starts afresh: not disabled again at once
            self._client.delete_item(TableName=self._table, Key={"pk": {"S": f"HEALTH#{endpoint_id}"}})
        return updated

    def disable(self, tenant: str, endpoint_id: str, *, reason: str) -> Endpoint | None:
        """Disable the endpoint with a reason; None if it was disabled already (or is gone)."""
        at = self._now()

        def disabled(current: Endpoint) -> Endpoint | None:
            if not current.enabled:
                return None
            return current.model_copy(
                update={
                    "enabled": False,
                    "disabled_at": at,
                    "disabled_reason": reason,
                    "disabled_notice_pending": True,
                }
            )

        try:
            return self._change(tenant, endpoint_id, disabled)
        except EndpointNotFound:
            return None

    def notice_sent(self, tenant: str, endpoint_id: str) -> None:
        """The other endpoints have been told it was disabled (their failed notices retry in units)."""

        def told(current: Endpoint) -> Endpoint | None:
            return (
                current.model_copy(update={"disabled_notice_pending": False})
                if current.disabled_notice_pending
                else None
            )

        try:
            self._change(tenant, endpoint_id, told)
        except EndpointNotFound:
            return

    def rotate_secret(self, tenant: str, endpoint_id: str) -> Endpoint:
        """A new signing key of the endpoint's scheme (v1a: a new key pair, its public key shown); the
        old one keeps signing alongside for 24 hours."""
        until = self._now() + ROTATION_OVERLAP

        return self._changed(
            tenant, endpoint_id, lambda current: _rekeyed(current, previous=current.secret, until=until)
        )

    def delete(self, tenant: str, endpoint_id: str) -> None:
        """Remove the endpoint; EndpointNotFound if there is none."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"TENANT#{tenant}"}},
                UpdateExpression="REMOVE #e SET endpoint_count = if_not_exists(endpoint_count, :one) - :one",
                ConditionExpression="attribute_exists(#e)",
                ExpressionAttributeNames={"#e": ATTRIBUTE + endpoint_id},
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id}") from None

    def _changed(self, tenant: str, endpoint_id: str, edit: Callable[[Endpoint], Endpoint]) -> Endpoint:
        changed = self._change(tenant, endpoint_id, edit)
        if changed is None:  # edit never answers None: for the type checker
            raise EndpointNotFound(f"no webhook endpoint {endpoint_id}")
        return changed

    def _change(
        self, tenant: str, endpoint_id: str, edit: Callable[[Endpoint], Endpoint | None]
    ) -> Endpoint | None:
        """Read, edit, and write back only if nobody wrote between (read again, up to 3 times)."""
        for _ in range(3):
            current = self.get(tenant, endpoint_id)
            edited = edit(current)
            if edited is None:
                return None
            edited = edited.model_copy(update={"updated_at": self._now()})
            try:
                self._write(edited, condition="#e = :current", current=current)
            except self._client.exceptions.ConditionalCheckFailedException:
                continue
            return edited
        raise InvalidTransition(f"webhook endpoint {endpoint_id} kept changing; try again")

    def _write(self, endpoint: Endpoint, *, condition: str, current: Endpoint | None = None) -> None:
        values: dict[str, Any] = {":record": {"S": endpoint.model_dump_json()}}
        if current is not None:
            values[":current"] = {"S": current.model_dump_json()}
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"TENANT#{endpoint.tenant}"}},
            UpdateExpression="SET #e = :record",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#e": ATTRIBUTE + endpoint.id},
            ExpressionAttributeValues=values,
        )
