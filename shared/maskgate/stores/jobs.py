"""The job store: jobs in DynamoDB, every status change a conditional write.

Each transition names the states it may leave, so a job never goes backwards and a terminal job
never changes again, however steps are retried or raced.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from maskgate.contracts.job import (
    TERMINAL,
    CacheOutcome,
    DeliveryAttempt,
    Job,
    JobStatus,
    may_leave_for,
    utcnow,
)
from maskgate.errors import InvalidRequest, InvalidTransition, JobNotFound
from maskgate.ids import PATTERN
from maskgate.stores.batch import BATCH_KEYS, batch_get

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_JSON_FIELDS = ("request", "image", "masks", "results", "error", "metadata")
# Recording a job's one prediction (queued → submitted), in JobStore.record_prediction's own write and
# in the spend store's settling transaction: the same fields, under the same condition.
PREDICTION_SETS = "prediction_id = :pid, #status = :submitted, updated_at = :now"
PREDICTION_CONDITION = "#status = :queued AND attribute_not_exists(prediction_id)"
PREDICTION_NAMES = {"#status": "status"}
# a job whose webhook is being retried, as the reconcile sweep finds it (JobStore._mark_retrying)
RETRYING_PREFIX = "RETRYING#"
RETRYING_DAYS = "retrying#"


def prediction_values(prediction_id: str, now: datetime) -> dict[str, Any]:
    """The values of PREDICTION_SETS and PREDICTION_CONDITION."""
    return {
        ":pid": {"S": prediction_id},
        ":submitted": {"S": JobStatus.SUBMITTED.value},
        ":queued": {"S": JobStatus.QUEUED.value},
        ":now": {"S": now.isoformat()},
    }


def _to_item(job: Job) -> dict[str, Any]:
    data = job.model_dump(mode="json", exclude_none=True, exclude={"deliveries"})
    # the reconcile sweep's index key: it reads the jobs of the last day or two, never the whole table
    item: dict[str, Any] = {
        "pk": {"S": f"JOB#{job.id}"},
        "created_day": {"S": job.created_at.date().isoformat()},
    }
    for name, value in data.items():
        item[name] = {"S": json.dumps(value) if name in _JSON_FIELDS else str(value)}
    return item


def job_from_item(item: dict[str, Any]) -> Job:
    """A job from its DynamoDB item (the sweep reads items in batches, so it decodes them too)."""
    data: dict[str, Any] = {}
    for name, value in item.items():
        if name in ("pk", "expires_at", "created_day"):
            continue
        if "S" in value:
            data[name] = json.loads(value["S"]) if name in _JSON_FIELDS else value["S"]
        elif name == "deliveries":
            data[name] = [json.loads(v["S"]) for v in value["L"]]
    return Job.model_validate(data)


def _encode_cursor(key: dict[str, Any]) -> str:
    plain = {name: value["S"] for name, value in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, tenant: str) -> dict[str, Any]:
    """A cursor back into a start key, only for the tenant's own listing (else InvalidRequest)."""
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        valid = isinstance(plain, dict) and set(plain) == {"pk", "tenant", "created_at"}
    except (ValueError, TypeError):
        valid = False
    valid = valid and all(isinstance(v, str) for v in plain.values()) and plain["tenant"] == tenant
    valid = (
        valid
        and re.fullmatch(PATTERN, plain["pk"].removeprefix("JOB#")) is not None
        and _is_time(plain["created_at"])
    )
    if not valid:
        raise InvalidRequest(
            "the cursor is not valid for this listing", errors=[{"loc": "cursor", "msg": "invalid"}]
        )
    return {name: {"S": value} for name, value in plain.items()}


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


class JobStore:
    """Jobs in the one DynamoDB table, keyed ``JOB#<id>``."""

    def __init__(
        self,
        *,
        table: str,
        client: DynamoDBClient,
        ttl_days: int = 30,
        now: Callable[[], datetime] = utcnow,
        on_finish: Callable[[Job], None] | None = None,
    ) -> None:
        self._table = table
        self._client = client
        self._ttl = timedelta(days=ttl_days)
        self._now = now
        # told of every job this store moves to a terminal status (its price and quota places are
        # given back there: maskgate.steps.limits)
        self._on_finish = on_finish

    def create(self, job: Job, *, also: Sequence[Mapping[str, Any]] = ()) -> bool:
        """Store a new job; False (and no write) if a job with that id exists already.

        ``also``: transaction items written with it, all or nothing (the job's price reserved against
        its tenant's cap); one whose condition fails raises ``TransactionCanceledException``."""
        item = _to_item(job)
        if job.status.terminal:
            item["expires_at"] = {"N": str(int((job.updated_at + self._ttl).timestamp()))}
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        try:
            if not also:
                self._client.put_item(**put)
            else:
                transaction: list[Any] = [{"Put": put}, *also]
                self._client.transact_write_items(TransactItems=transaction)
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        except self._client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons", [])
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False  # the job exists: whatever else refused, this create is a retry
            raise
        return True

    def get(self, job_id: str) -> Job:
        """The job, read consistently; JobNotFound if there is none."""
        found = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"JOB#{job_id}"}}, ConsistentRead=True
        )
        if "Item" not in found:
            raise JobNotFound(f"no job {job_id}")
        return job_from_item(found["Item"])

    def transition(
        self,
        job_id: str,
        target: JobStatus,
        *,
        only_from: JobStatus | None = None,
        unsubmitted: bool = False,
        **fields: Any,
    ) -> Job:
        """Move the job to ``target`` and set ``fields``, only from a status that may lead there
        (or only from ``only_from``), and with ``unsubmitted`` only if no submit was ever made."""
        now = self._now()
        values: dict[str, Any] = {"status": target.value, "updated_at": now.isoformat(), **fields}
        if target.terminal:
            values["finished_at"] = now.isoformat()
        names = {f"#{k}": k for k in values}
        expr_values: dict[str, Any] = {}
        sets = []
        for key, value in values.items():
            encoded = value.model_dump_json() if isinstance(value, BaseModel) else value
            if key in _JSON_FIELDS and not isinstance(value, BaseModel):
                encoded = json.dumps(value)
            expr_values[f":{key}"] = {"S": str(encoded)}
            sets.append(f"#{key} = :{key}")
        if target.terminal:
            sets.append("expires_at = :expires_at")
            expr_values[":expires_at"] = {"N": str(int((now + self._ttl).timestamp()))}
        allowed = [only_from] if only_from is not None else may_leave_for(target)
        for i, status in enumerate(allowed):
            expr_values[f":from{i}"] = {"S": status.value}
        condition = (
            "attribute_exists(pk) AND #status IN ("
            + ", ".join(f":from{i}" for i in range(len(allowed)))
            + ")"
        )
        if unsubmitted:
            condition += " AND attribute_not_exists(submit_attempt) AND attribute_not_exists(prediction_id)"
        try:
            updated = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"JOB#{job_id}"}},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=expr_values,
                ReturnValues="ALL_NEW",
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            raise InvalidTransition(f"job {job_id} cannot move to {target.value}") from exc
        moved = job_from_item(updated["Attributes"])
        if target.terminal and self._on_finish is not None:
            self._on_finish(moved)
        return moved

    def page(
        self, tenant: str, *, status: JobStatus | None = None, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[Job], str | None]:
        """The tenant's jobs, newest first, a page at a time; the cursor is opaque to callers.

        The index holds the jobs' keys only (so a job's updates never write it): the page's jobs are
        read from the table in one BatchGetItem, and ``status`` keeps those in it (a page can hold
        fewer than ``limit`` jobs)."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "tenant-created",
            "KeyConditionExpression": "tenant = :tenant",
            "ExpressionAttributeValues": {":tenant": {"S": tenant}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            query["ExclusiveStartKey"] = _decode_cursor(cursor, tenant)
        found = self._client.query(**query)
        order = [item["pk"]["S"] for item in found.get("Items", [])]
        items = self._batch_get(order)
        jobs = [job_from_item(items[pk]) for pk in order if pk in items]
        if status is not None:
            jobs = [job for job in jobs if job.status is status]
        after = found.get("LastEvaluatedKey")
        return jobs, _encode_cursor(after) if after else None

    def _batch_get(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The items of these keys that exist (read consistently), by key; MaskgateError when DynamoDB
        keeps some unprocessed through every try (a page missing jobs would skip them for good: the
        cursor is past them)."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), BATCH_KEYS):
            chunk = [{"pk": {"S": key}} for key in keys[start : start + BATCH_KEYS]]
            for item in batch_get(self._client, self._table, chunk, consistent=True):
                found[item["pk"]["S"]] = item
        return found

    def set_task_token(self, job_id: str, token: str) -> Job:
        """Record the token of the task now waiting on the job's prediction (unless it finished)."""
        finished = [s.value for s in TERMINAL]
        try:
            updated = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"JOB#{job_id}"}},
                UpdateExpression="SET task_token = :t",
                ConditionExpression="attribute_exists(pk) AND NOT #status IN (:f0, :f1, :f2)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":t": {"S": token},
                    **{f":f{i}": {"S": v} for i, v in enumerate(finished)},
                },
                ReturnValues="ALL_NEW",
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            raise InvalidTransition(f"job {job_id} is finished or gone; no task may wait on it") from exc
        return job_from_item(updated["Attributes"])

    def claim_submit(
        self,
        job_id: str,
        *,
        attempt: str,
        callback_token: str,
        cache: CacheOutcome | None = None,
        task_token: str | None = None,
    ) -> Job:
        """Write the submit intent before the POST: only a queued job with no intent and no
        prediction may be claimed (else InvalidTransition), so at most one submit is ever made.
        ``cache`` ("miss" when the result cache was looked up) and ``task_token`` (the task that
        waits for the prediction) are recorded in the same write."""
        cached = {":cache": {"S": cache}} if cache is not None else {}
        token = {":tt": {"S": task_token}} if task_token is not None else {}
        try:
            updated = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"JOB#{job_id}"}},
                UpdateExpression="SET submit_attempt = :a, submit_started_at = :t, callback_token = :c"
                + (", #cache = :cache" if cached else "")
                + (", task_token = :tt" if token else ""),
                ConditionExpression=(
                    "#status = :queued AND attribute_not_exists(submit_attempt)"
                    " AND attribute_not_exists(prediction_id)"
                ),
                ExpressionAttributeNames={"#status": "status", **({"#cache": "cache"} if cached else {})},
                ExpressionAttributeValues={
                    ":a": {"S": attempt},
                    ":t": {"S": self._now().isoformat()},
                    ":c": {"S": callback_token},
                    ":queued": {"S": JobStatus.QUEUED.value},
                    **cached,
                    **token,
                },
                ReturnValues="ALL_NEW",
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            raise InvalidTransition(f"job {job_id} is not queued for a first submit") from exc
        return job_from_item(updated["Attributes"])

    def release_submit(self, job_id: str, *, attempt: str) -> None:
        """Take back this attempt's intent (its POST surely did not land); a later one's stays."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"JOB#{job_id}"}},
                UpdateExpression="REMOVE submit_attempt, submit_started_at",
                ConditionExpression="submit_attempt = :a AND attribute_not_exists(prediction_id)",
                ExpressionAttributeValues={":a": {"S": attempt}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            pass  # not ours any more, or the prediction is known: nothing to take back

    def record_prediction(self, job_id: str, prediction_id: str) -> Job:
        """Record the job's one prediction (queued → submitted); the same id again is a no-op.

        InvalidTransition when the job finished meanwhile or holds another prediction."""
        try:
            updated = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"JOB#{job_id}"}},
                UpdateExpression="SET " + PREDICTION_SETS,
                ConditionExpression=PREDICTION_CONDITION,
                ExpressionAttributeNames=PREDICTION_NAMES,
                ExpressionAttributeValues=prediction_values(prediction_id, self._now()),
                ReturnValues="ALL_NEW",
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            job = self.get(job_id)
            if job.prediction_id == prediction_id and not job.status.terminal:
                return job
            raise InvalidTransition(f"job {job_id} cannot take prediction {prediction_id}") from exc
        return job_from_item(updated["Attributes"])

    def set_webhook_body(self, job_id: str, body: str, *, webhook_id: str) -> str:
        """Keep the first webhook body built for the job, marking its delivery pending; return the
        body that is stored."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"JOB#{job_id}"}},
                UpdateExpression="SET webhook_body = :b, webhook_pending = :w",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(webhook_body)",
                ExpressionAttributeValues={":b": {"S": body}, ":w": {"S": webhook_id}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            stored = self.get(job_id).webhook_body
            if stored is None:
                raise JobNotFound(f"no job {job_id}") from None
            return stored
        return body

    def _mark_retrying(self, job_id: str, at: datetime) -> None:
        """Mark the job as one whose webhook is being retried, as of its latest retry: the reconcile
        sweep reads jobs by their creation day over the longest a job may run, but retries go on for a
        day and more after that, and the sweep finds the jobs whose retries stopped late by their mark
        (``RETRYING#<id>`` under ``retrying#<day of the retry>`` of the ``created-day`` index)."""
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": f"{RETRYING_PREFIX}{job_id}"},
                "created_day": {"S": RETRYING_DAYS + at.date().isoformat()},
                "created_at": {"S": at.isoformat().replace("+00:00", "Z")},
                "expires_at": {"N": str(int((at + self._ttl).timestamp()))},
            },
        )

    def record_delivery(self, job_id: str, attempt: DeliveryAttempt) -> None:
        """Append one webhook attempt to the job's delivery log (its delivery is no longer pending:
        it ended, or its delivery unit runs)."""
        self.record_deliveries(job_id, [attempt])

    def record_deliveries(self, job_id: str, attempts: list[DeliveryAttempt]) -> None:
        """Append webhook attempts to the job's delivery log in one write (the first attempts of a
        fan-out: one write of the item, not one per target)."""
        if not attempts:
            return
        retried = [attempt.at for attempt in attempts if attempt.outcome == "retrying"]
        if retried:  # marked first: a recorded retry always has its mark
            self._mark_retrying(job_id, max(retried))
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"JOB#{job_id}"}},
            UpdateExpression=(
                "SET deliveries = list_append(if_not_exists(deliveries, :empty), :a) REMOVE webhook_pending"
            ),
            ExpressionAttributeValues={
                ":a": {"L": [{"S": attempt.model_dump_json()} for attempt in attempts]},
                ":empty": {"L": []},
            },
        )
