"""``Idempotency-Key`` for creating jobs, on Powertools' idempotency utility.

The record lives in the jobs table (``pk`` = ``idempotency#segmentations#<hash>``, expiring through
the table's TTL attribute after 24 h). The key is the tenant plus the header; the request body is the
validated payload, so the same key with another body is a Conflict (409), and the same key and body
replay the first answer. A request that fails (a 4xx or 5xx) leaves no record, so it can be retried.

A run can also end without failing: the runtime kills it (a timeout) after the job is written and
before its workflow starts, leaving Powertools' record in progress. So the job id is claimed too, in
its own item written before the job (``idempotency#<name>#job#<hash>``: the id, its time, the body's
hash): a retry takes the claimed id, finds the job the first attempt wrote, and starts its workflow
(a no-op if it runs), so it ends with exactly one job. A retry while the record is still in progress
runs the create itself for the same reason: every step of it is idempotent for the claimed id.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from maskgate.errors import Conflict
from maskgate.ids import job_id_claim

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

KEPT_SECONDS = 24 * 3600
Create = Callable[[dict[str, Any]], dict[str, Any]]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def body_hash(body: Any) -> str:
    """The request body's hash, independent of key order and spacing."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class JobClaims:
    """The job id each (tenant, Idempotency-Key) claimed, kept for as long as the key is."""

    def __init__(self, *, table: str, client: DynamoDBClient, name: str) -> None:
        self._table = table
        self._client = client
        self._name = name

    def _key(self, tenant: str, key: str) -> dict[str, Any]:
        return {"pk": {"S": f"idempotency#{self._name}#job#{_digest(tenant, key)}"}}

    def claim(self, tenant: str, key: str, body: str, job_id: str, at: datetime) -> tuple[str, datetime]:
        """Claim ``job_id`` created ``at`` for the key, or return what an earlier attempt claimed
        (Conflict if that attempt had another body)."""
        now = int(time.time())
        item = {
            **self._key(tenant, key),
            "claimed_job_id": {"S": job_id},
            "claimed_at": {"S": at.isoformat()},
            "claimed_body": {"S": body},
            "expires_at": {"N": str(now + KEPT_SECONDS)},
        }
        for _ in range(2):  # a claim that expires between the two calls is claimed afresh
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                )
            except self._client.exceptions.ConditionalCheckFailedException:
                found = self._client.get_item(
                    TableName=self._table, Key=self._key(tenant, key), ConsistentRead=True
                )
                if "Item" in found:
                    return self._earlier(found["Item"], body)
                continue
            return job_id, at
        raise Conflict("a request with this Idempotency-Key is still being processed")

    @staticmethod
    def _earlier(item: dict[str, Any], body: str) -> tuple[str, datetime]:
        if item["claimed_body"]["S"] != body:
            raise Conflict("this Idempotency-Key was already used with a different request body")
        return item["claimed_job_id"]["S"], datetime.fromisoformat(item["claimed_at"]["S"])

    def release(self, tenant: str, key: str) -> None:
        """Free the key's claim after a create that failed (and so wrote no job that may run)."""
        self._client.delete_item(TableName=self._table, Key=self._key(tenant, key))


class _Attempt:
    """One run of a create: claims the job id on first use, and remembers that it did."""

    def __init__(self, claims: JobClaims, request: dict[str, Any]) -> None:
        self._claims = claims
        self._tenant, self._key = str(request["tenant"]), str(request["key"])
        self._body = body_hash(request["body"])
        self.claimed = False

    def __call__(self, job_id: str, at: datetime) -> tuple[str, datetime]:
        claimed = self._claims.claim(self._tenant, self._key, self._body, job_id, at)
        self.claimed = True  # not on Conflict: another body's claim is not this attempt's to free
        return claimed

    def release(self) -> None:
        if self.claimed:
            self._claims.release(self._tenant, self._key)


class IdempotentCreate:
    """Runs ``create(body)`` at most once per (tenant, Idempotency-Key) for 24 hours."""

    def __init__(self, *, table: str, client: DynamoDBClient, create: Create, name: str) -> None:
        store = DynamoDBPersistenceLayer(
            table_name=table,
            key_attr="pk",
            expiry_attr="expires_at",
            in_progress_expiry_attr="idempotency_in_progress_until",
            status_attr="idempotency_status",
            data_attr="idempotency_response",
            validation_key_attr="idempotency_body_hash",
            boto3_client=client,
        )
        config = IdempotencyConfig(
            event_key_jmespath="[tenant, key]",
            payload_validation_jmespath="body",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=KEPT_SECONDS,
            hash_function="sha256",
        )
        self._config = config
        self._create = create
        self._claims = JobClaims(table=table, client=client, name=name)
        self._once = idempotent_function(
            data_keyword_argument="request",
            persistence_store=store,
            config=config,
            key_prefix=f"idempotency#{name}",
        )(self._run)

    def _run(self, request: dict[str, Any]) -> dict[str, Any]:
        """The create, with the job id it may write claimed for the key first (``ids.job_id_claim``)."""
        attempt = _Attempt(self._claims, request)
        token = job_id_claim.set(attempt)
        try:
            return self._create(request["body"])
        except Exception:
            attempt.release()  # as Powertools deletes its record: the key is free for a corrected retry
            raise
        finally:
            job_id_claim.reset(token)

    def __call__(self, *, tenant: str, key: str, body: dict[str, Any], lambda_context: Any) -> dict[str, Any]:
        """The first answer for this (tenant, key); the Lambda context bounds an in-progress record."""
        self._config.register_lambda_context(lambda_context)
        try:
            result: dict[str, Any] = self._once(request={"tenant": tenant, "key": key, "body": body})
        except IdempotencyValidationError as exc:
            raise Conflict("this Idempotency-Key was already used with a different request body") from exc
        except IdempotencyAlreadyInProgressError:
            # the first attempt still runs, or was killed after claiming its job id: adopt its job
            result = self._run({"tenant": tenant, "key": key, "body": body})
        return result
