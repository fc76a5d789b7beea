"""``Idempotency-Key`` for creating jobs (DESIGN §5), on Powertools' idempotency utility.

The record lives in the jobs table (``pk`` = ``idempotency#segmentations#<hash>``, expiring through
the table's TTL attribute after 24 h). The key is the tenant plus the header; the request body is the
validated payload, so the same key with another body is a Conflict (409), and the same key and body
replay the first answer. A request that fails (a 4xx or 5xx) leaves no record, so it can be retried.
"""

from __future__ import annotations

from collections.abc import Callable
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

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

KEPT_SECONDS = 24 * 3600
Create = Callable[[dict[str, Any]], dict[str, Any]]


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
        self._once = idempotent_function(
            data_keyword_argument="request",
            persistence_store=store,
            config=config,
            key_prefix=f"idempotency#{name}",
        )(self._run)

    def _run(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._create(request["body"])

    def __call__(self, *, tenant: str, key: str, body: dict[str, Any], lambda_context: Any) -> dict[str, Any]:
        """The first answer for this (tenant, key); the Lambda context bounds an in-progress record."""
        self._config.register_lambda_context(lambda_context)
        try:
            result: dict[str, Any] = self._once(request={"tenant": tenant, "key": key, "body": body})
        except IdempotencyValidationError as exc:
            raise Conflict("this Idempotency-Key was already used with a different request body") from exc
        except IdempotencyAlreadyInProgressError as exc:
            raise Conflict("a request with this Idempotency-Key is still being processed") from exc
        return result
