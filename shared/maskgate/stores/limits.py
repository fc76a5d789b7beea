"""A tenant's limits (kept on its ``TENANT#<id>`` item) and its quotas (counted in the jobs table).

Limits: one attribute each on the tenant item (``max_jobs_in_flight``, ``jobs_per_minute``,
``images_per_day``, ``monthly_spend_cap_usd`` (NULL: no cap), ``spend_threshold``,
``cache_enabled``); one the tenant was never given takes the deployment's default (template
parameters). Quotas, each one conditional write per job and none while it is 0:

- **jobs in flight** (``QUOTA#<tenant>``, a map ``jobs`` of job id → when it was taken): a job holds
  its place from acceptance until it ends; taking is re-entrant for the job that holds one. A place
  whose job died without giving it back is reclaimed once older than the job deadline plus a minute,
  and the reconcile sweep gives back the places of finished jobs;
- **jobs per minute** and **images per day** (``QUOTA#<tenant>#m<minute>`` / ``#d<day>``, counters
  expiring through the table's TTL).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from maskgate.contracts.limits import TenantLimits
from maskgate.errors import QuotaExceeded
from maskgate.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from maskgate.stores.tenants import TenantStore

LIMIT_FIELDS = tuple(TenantLimits.model_fields)
STALE_MARGIN_SECONDS = 60
DAY_SECONDS = 24 * 3600


def default_limits(settings: Settings) -> TenantLimits:
    """The limits of a tenant that was given none of its own (the template's parameters)."""
    return TenantLimits(
        max_jobs_in_flight=settings.tenant_max_jobs_in_flight,
        jobs_per_minute=settings.tenant_jobs_per_minute,
        images_per_day=settings.tenant_images_per_day,
        monthly_spend_cap_usd=settings.tenant_monthly_spend_cap_usd,
        spend_threshold=settings.tenant_spend_threshold,
    )


def _decode(value: Mapping[str, Any]) -> Any:
    if "NULL" in value:
        return None
    if "BOOL" in value:
        return value["BOOL"]
    text = value["N"]
    return float(text) if "." in text or "e" in text.lower() else int(text)


def _encode(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    return {"N": repr(value) if isinstance(value, float) else str(value)}


class LimitStore:
    """Each tenant's limits: its own where it was given them, the deployment's defaults elsewhere."""

    def __init__(self, *, table: str, client: DynamoDBClient, tenants: TenantStore, defaults: TenantLimits):
        self._table = table
        self._client = client
        self._tenants = tenants
        self._defaults = defaults

    def get(self, tenant: str) -> TenantLimits:
        """The tenant's limits: its own, and the deployment's defaults for the rest."""
        own = self._own(tenant)
        return self._defaults.model_copy(update=own) if own else self._defaults

    def own(self, tenant: str) -> set[str]:
        """The limits the tenant was given itself."""
        return set(self._own(tenant))

    def _own(self, tenant: str) -> dict[str, Any]:
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"TENANT#{tenant}"}},
            ProjectionExpression=", ".join(f"#{n}" for n in LIMIT_FIELDS),
            ExpressionAttributeNames={f"#{n}": n for n in LIMIT_FIELDS},
        ).get("Item", {})
        return {name: _decode(value) for name, value in item.items() if name in LIMIT_FIELDS}

    def set(self, tenant: str, changes: dict[str, Any]) -> TenantLimits:
        """Give the tenant these limits (the others keep theirs); the tenant is created if needed."""
        merged = TenantLimits.model_validate({**self.get(tenant).model_dump(), **changes})
        if changes:
            self._tenants.ensure_tenant(tenant)
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"TENANT#{tenant}"}},
                UpdateExpression="SET " + ", ".join(f"#{n} = :{n}" for n in changes),
                ExpressionAttributeNames={f"#{n}": n for n in changes},
                ExpressionAttributeValues={f":{n}": _encode(getattr(merged, n)) for n in changes},
            )
        return merged


class Quotas:
    def __init__(
        self,
        *,
        table: str,
        client: DynamoDBClient,
        stale_after_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table
        self._client = client
        self._stale_after = stale_after_seconds + STALE_MARGIN_SECONDS
        self._clock = clock

    @staticmethod
    def enabled(limits: TenantLimits) -> bool:
        return bool(limits.max_jobs_in_flight or limits.jobs_per_minute or limits.images_per_day)

    def take(self, tenant: str, job_id: str, limits: TenantLimits) -> None:
        """Take the job's place in every quota of the tenant; QuotaExceeded (with the seconds until one
        frees up) when one is full, and then nothing stays taken."""
        now = self._clock()
        newly_held = limits.max_jobs_in_flight > 0 and self._hold(tenant, job_id, limits.max_jobs_in_flight)
        counted: list[str] = []
        for window, limit, name in (
            (60, limits.jobs_per_minute, f"{limits.jobs_per_minute} jobs per minute"),
            (DAY_SECONDS, limits.images_per_day, f"{limits.images_per_day} images per day"),
        ):
            if limit <= 0:
                continue
            key = _window_key(tenant, window, now)
            if not self._count(key, limit, now + 2 * window, by=1):
                for done in counted:
                    self._count(done, None, 0, by=-1)
                if newly_held:
                    self.release(tenant, job_id)
                raise QuotaExceeded(
                    f"over the tenant's quota of {name}", retry_after=_until_next(window, now)
                )
            counted.append(key)

    def check(self, tenant: str, limits: TenantLimits) -> QuotaExceeded | None:
        """What ``take`` would refuse now, read without taking anything (a dry run)."""
        now = self._clock()
        if limits.max_jobs_in_flight > 0 and len(self.in_flight(tenant)) >= limits.max_jobs_in_flight:
            return QuotaExceeded(
                f"over the tenant's quota of {limits.max_jobs_in_flight} jobs in flight", retry_after=5
            )
        for window, limit, name in (
            (60, limits.jobs_per_minute, "jobs per minute"),
            (DAY_SECONDS, limits.images_per_day, "images per day"),
        ):
            if limit > 0 and self._hits(_window_key(tenant, window, now)) >= limit:
                return QuotaExceeded(
                    f"over the tenant's quota of {limit} {name}", retry_after=_until_next(window, now)
                )
        return None

    def mark_taken(self, job_id: str) -> None:
        """Note on the job that it holds its places (a retried Submit does not count it again)."""
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"JOB#{job_id}"}},
            UpdateExpression="SET quota_taken = :yes",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":yes": {"S": "True"}},
        )

    def release(self, tenant: str, job_id: str) -> None:
        """Give the job's place in flight back (a no-op when it holds none)."""
        self._remove(tenant, job_id, "attribute_exists(jobs.#job)")

    def in_flight(self, tenant: str) -> dict[str, float]:
        """The tenant's jobs holding a place in flight: job id → when it was taken."""
        return self._places(tenant) or {}

    def _hold(self, tenant: str, job_id: str, limit: int) -> bool:
        """Take a place in flight: True when new, False when the job held it; QuotaExceeded if full."""
        key = {"pk": {"S": f"QUOTA#{tenant}"}}
        for _ in range(3):  # at most: create the map, reclaim stale places, take
            try:
                updated = self._client.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET jobs.#job = if_not_exists(jobs.#job, :now)",
                    ConditionExpression="attribute_exists(jobs) AND (attribute_exists(jobs.#job)"
                    " OR size(jobs) < :limit)",
                    ExpressionAttributeNames={"#job": job_id},
                    ExpressionAttributeValues={
                        ":now": {"N": str(int(self._clock()))},
                        ":limit": {"N": str(limit)},
                    },
                    ReturnValues="ALL_OLD",
                )
            except self._client.exceptions.ConditionalCheckFailedException:
                places = self._places(tenant)
                if places is None:
                    self._client.update_item(
                        TableName=self._table,
                        Key=key,
                        UpdateExpression="SET jobs = if_not_exists(jobs, :empty)",
                        ExpressionAttributeValues={":empty": {"M": {}}},
                    )
                elif len(places) >= limit and not self._reclaim_stale(places, tenant):
                    break  # full of live places (else: one was freed meanwhile, try again)
            else:
                return job_id not in updated.get("Attributes", {}).get("jobs", {}).get("M", {})
        raise QuotaExceeded(f"over the tenant's quota of {limit} jobs in flight", retry_after=5)

    def _places(self, tenant: str) -> dict[str, float] | None:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"QUOTA#{tenant}"}}, ConsistentRead=True
        ).get("Item", {})
        if "jobs" not in item:
            return None
        return {job: float(v["N"]) for job, v in item["jobs"]["M"].items()}

    def _reclaim_stale(self, places: dict[str, float], tenant: str) -> bool:
        oldest_allowed = self._clock() - self._stale_after
        stale = {job: at for job, at in places.items() if at < oldest_allowed}
        for job, at in stale.items():
            self._remove(tenant, job, "jobs.#job = :at", {":at": {"N": str(int(at))}})
        return bool(stale)

    def _remove(self, tenant: str, job_id: str, condition: str, values: dict[str, Any] | None = None) -> None:
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": f"QUOTA#{tenant}"}},
            "UpdateExpression": "REMOVE jobs.#job",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#job": job_id},
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            self._client.update_item(**request)
        except self._client.exceptions.ConditionalCheckFailedException:
            pass

    def _count(self, key: str, limit: int | None, expires: float, *, by: int) -> bool:
        """Add ``by`` to a window's counter, only while it stays within ``limit``; False if it would not."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": key}},
            "UpdateExpression": "ADD hits :by",
            "ExpressionAttributeValues": {":by": {"N": str(by)}},
        }
        if limit is not None:
            request["UpdateExpression"] += " SET expires_at = :exp"
            request["ConditionExpression"] = "attribute_not_exists(hits) OR hits < :limit"
            request["ExpressionAttributeValues"].update(
                {":limit": {"N": str(limit)}, ":exp": {"N": str(int(expires))}}
            )
        try:
            self._client.update_item(**request)
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _hits(self, key: str) -> int:
        item = self._client.get_item(TableName=self._table, Key={"pk": {"S": key}}, ConsistentRead=True)
        return int(item.get("Item", {}).get("hits", {}).get("N", "0"))


def _window_key(tenant: str, window: int, now: float) -> str:
    return f"QUOTA#{tenant}#{'m' if window == 60 else 'd'}{int(now // window)}"


def _until_next(window: int, now: float) -> int:
    return max(1, int((now // window + 1) * window - now) + 1)
