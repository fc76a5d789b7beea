"""Every delivery attempt to a registered endpoint, and each endpoint's running health, in the jobs table.

An attempt is one item (``ATTEMPT#<endpoint>#<webhook-id>#<n>``) found newest first through the
table's ``tenant-created`` index under ``ATTEMPTS#<endpoint>``; the table's TTL removes it after the
retention. An event that happened while the endpoint was disabled is kept as attempt 0, failed with
``EndpointDisabled`` and never sent, so a recovery after re-enabling finds it. An endpoint's health
(``HEALTH#<endpoint>``) holds since when every attempt has failed, which is what disables an endpoint
that has been failing too long (re-enabling it deletes it).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from maskgate.contracts.job import DeliveryAttempt, utcnow
from maskgate.errors import InvalidRequest
from maskgate.stores.batch import BATCH_KEYS, batch_get

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

INDEX = "tenant-created"
PAGE = 50
MISSED = "EndpointDisabled"  # the error of an event a disabled endpoint was never sent


class LoggedAttempt(BaseModel):
    """One attempt to an endpoint, as ``GET /v1/webhook-endpoints/{id}/attempts`` lists it."""

    model_config = ConfigDict(frozen=True)
    at: datetime = Field(description="When the attempt started (UTC).")
    webhook_id: str = Field(description="The webhook-id header: the same on every attempt of a message.")
    event: str = Field(description="The event type.")
    job_id: str | None = Field(default=None, description="The job the event is about, if any.")
    attempt: int = Field(
        description="1 for a message's first attempt to this endpoint, counting up; 0: not sent, the "
        "endpoint was disabled when the event happened (a recovery after re-enabling sends it)."
    )
    status: Literal["succeeded", "failed"] = Field(description="succeeded: the endpoint answered 2xx.")
    status_code: int | None = Field(default=None, description="The endpoint's HTTP status, if it answered.")
    error: str | None = Field(default=None, description="Why there was no answer (e.g. ConnectError).")
    latency_ms: int | None = Field(default=None, description="How long the attempt took.")
    response: str | None = Field(
        default=None,
        description="The first 1 KiB of the endpoint's answer, control characters escaped.",
    )
    next_attempt_at: datetime | None = Field(default=None, description="When it is tried again, if it is.")


@dataclass(frozen=True)
class AttemptLog:
    table: str
    client: DynamoDBClient
    retention_days: int = 30

    def record(self, attempt: DeliveryAttempt, *, job_id: str | None) -> None:
        """Keep one attempt to an endpoint (attempts to a job's own webhook_url are on the job)."""
        if attempt.endpoint_id is None:
            return
        logged = LoggedAttempt(
            at=attempt.at,
            webhook_id=attempt.webhook_id,
            event=attempt.event,
            job_id=job_id,
            attempt=attempt.attempt,
            status="succeeded" if attempt.outcome == "delivered" else "failed",
            status_code=attempt.status_code,
            error=attempt.error,
            latency_ms=attempt.latency_ms,
            response=attempt.response,
            next_attempt_at=attempt.next_attempt_at,
        )
        expires = attempt.at + timedelta(days=self.retention_days)
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"ATTEMPT#{attempt.endpoint_id}#{attempt.webhook_id}#{attempt.attempt}"},
                "tenant": {"S": f"ATTEMPTS#{attempt.endpoint_id}"},
                "created_at": {"S": f"{attempt.at.isoformat()}#{attempt.webhook_id}#{attempt.attempt}"},
                "attempt_status": {"S": logged.status},
                "record": {"S": logged.model_dump_json()},
                "expires_at": {"N": str(int(expires.timestamp()))},
            },
        )

    def record_missed(
        self, endpoint_id: str, *, webhook_id: str, event: str, job_id: str, at: datetime
    ) -> None:
        """Keep an event the disabled endpoint was not sent (attempt 0, failed): one item per message,
        the same however often it is missed."""
        self.record(
            DeliveryAttempt(
                webhook_id=webhook_id,
                event=event,
                attempt=0,
                at=at,
                url="",
                endpoint_id=endpoint_id,
                error=MISSED,
                outcome="gave_up",
            ),
            job_id=job_id,
        )

    def of_message(self, endpoint_id: str, webhook_id: str, *, up_to: int) -> list[LoggedAttempt]:
        """The message's attempts to the endpoint numbered 1 to ``up_to``, in order (read consistently,
        in one BatchGetItem): numbers may skip (a unit's attempt is numbered after the retries before
        it, and a throttled first attempt is made by a unit)."""
        numbers = range(1, min(up_to, BATCH_KEYS) + 1)
        keys = [{"pk": {"S": f"ATTEMPT#{endpoint_id}#{webhook_id}#{number}"}} for number in numbers]
        items = batch_get(self.client, self.table, keys, consistent=True)
        found = [LoggedAttempt.model_validate_json(item["record"]["S"]) for item in items]
        return sorted(found, key=lambda logged: logged.attempt)

    def page(
        self,
        endpoint_id: str,
        *,
        status: Literal["succeeded", "failed"] | None = None,
        cursor: str | None = None,
        limit: int = PAGE,
        since: datetime | None = None,
    ) -> tuple[list[LoggedAttempt], str | None]:
        """Newest first, ``limit`` at most; the cursor of the next page, None on the last."""
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": INDEX,
            "KeyConditionExpression": "tenant = :log"
            + (" AND created_at >= :since" if since is not None else ""),
            "ExpressionAttributeValues": {":log": {"S": f"ATTEMPTS#{endpoint_id}"}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if since is not None:
            query["ExpressionAttributeValues"][":since"] = {"S": since.isoformat()}
        if status is not None:
            query["FilterExpression"] = "attempt_status = :status"
            query["ExpressionAttributeValues"][":status"] = {"S": status}
        found: list[LoggedAttempt] = []
        start = _decoded(cursor, endpoint_id)
        while len(found) < limit:
            if start is not None:
                query["ExclusiveStartKey"] = start
            answer = self.client.query(**query)
            found += [LoggedAttempt.model_validate_json(i["record"]["S"]) for i in answer.get("Items", [])]
            start = answer.get("LastEvaluatedKey")
            if start is None:
                break
            query["Limit"] = limit - len(found)
        return found[:limit], _encoded(start) if start is not None else None


@dataclass(frozen=True)
class EndpointHealth:
    """Since when every attempt to an endpoint has failed (nothing once one succeeds)."""

    table: str
    client: DynamoDBClient
    now: Callable[[], datetime] = utcnow

    def observe(self, endpoint_id: str, *, delivered: bool) -> datetime | None:
        """Count one attempt; since when the endpoint has failed without a success, or None."""
        key = {"pk": {"S": f"HEALTH#{endpoint_id}"}}
        at = self.now().isoformat()
        if delivered:
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET last_success_at = :at REMOVE failing_since",
                ExpressionAttributeValues={":at": {"S": at}},
            )
            return None
        answer = self.client.update_item(
            TableName=self.table,
            Key=key,
            UpdateExpression="SET failing_since = if_not_exists(failing_since, :at), last_failure_at = :at",
            ExpressionAttributeValues={":at": {"S": at}},
            ReturnValues="ALL_NEW",
        )
        return datetime.fromisoformat(answer["Attributes"]["failing_since"]["S"])


def _encoded(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decoded(cursor: str | None, endpoint_id: str) -> dict[str, Any] | None:
    """The index key a cursor holds, if it is one this log gave out for this endpoint."""
    if cursor is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        key = None
    shaped = (
        isinstance(key, dict)
        and set(key) == {"pk", "tenant", "created_at"}
        and all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values())
    )
    if not shaped or key["tenant"]["S"] != f"ATTEMPTS#{endpoint_id}":
        raise InvalidRequest("the cursor is not one this API gave out for this endpoint")
    return dict(key)


class EndpointStats(BaseModel):
    """How an endpoint has done over the last 24 hours, from its attempt log."""

    model_config = ConfigDict(frozen=True)
    attempts: int = Field(description="Attempts in the last 24 hours (counted up to 1,000).")
    success_rate: float | None = Field(description="Share of them answered 2xx; null with no attempts.")
    latency_p50_ms: int | None = Field(description="Median attempt latency; null with no answered attempt.")
    latency_p95_ms: int | None = Field(description="95th percentile attempt latency.")
    last_error: str | None = Field(
        description="The newest failed attempt's status code or error, null when none failed."
    )
    state: Literal["healthy", "failing", "disabled"] = Field(
        description="disabled: it receives nothing; failing: its newest attempt failed; else healthy."
    )


STATS_WINDOW = timedelta(hours=24)
STATS_LIMIT = 1000


def endpoint_stats(log: AttemptLog, endpoint_id: str, *, enabled: bool, now: datetime) -> EndpointStats:
    """The endpoint's last 24 hours: attempts, success rate, latency percentiles, last error, state."""
    logged, _ = log.page(endpoint_id, limit=STATS_LIMIT, since=now - STATS_WINDOW)
    recent = [a for a in logged if a.attempt > 0]  # what was sent, not what a disabled endpoint missed
    latencies = sorted(a.latency_ms for a in recent if a.latency_ms is not None)
    failed = next((a for a in recent if a.status == "failed"), None)
    last_error = None
    if failed is not None:
        last_error = str(failed.status_code) if failed.status_code is not None else failed.error
    if not enabled:
        state: Literal["healthy", "failing", "disabled"] = "disabled"
    else:
        state = "failing" if recent and recent[0].status == "failed" else "healthy"
    return EndpointStats(
        attempts=len(recent),
        success_rate=round(sum(a.status == "succeeded" for a in recent) / len(recent), 4) if recent else None,
        latency_p50_ms=_percentile(latencies, 0.50),
        latency_p95_ms=_percentile(latencies, 0.95),
        last_error=last_error,
        state=state,
    )


def _percentile(ordered: list[int], q: float) -> int | None:
    """Nearest-rank percentile of an ordered list."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
