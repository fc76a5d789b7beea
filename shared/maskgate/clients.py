"""Cached factories: the only place clients and stores are built (once per container, on first use)."""

from __future__ import annotations

import time
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from maskgate.settings import get_settings
from maskgate.stores.admission import Admission
from maskgate.stores.bucket import Bucket
from maskgate.stores.jobs import JobStore
from maskgate.stores.rate_limit import RateLimiter
from maskgate.stores.tenants import TenantStore
from maskgate.workflow.executions import UploadExpiries, Workflow
from maskgate.workflow.timings import timings_of

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from botocore.config import Config
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_stepfunctions.client import SFNClient

    from maskgate.cache.reuse import ResultCache
    from maskgate.steps.api import RequestIntake
    from maskgate.steps.callback import CallbackReceiver
    from maskgate.steps.limits import Gate
    from maskgate.steps.on_upload import UploadIntake
    from maskgate.steps.reconcile import Reconciler
    from maskgate.stores.attempt_log import AttemptLog
    from maskgate.stores.endpoints import EndpointStore
    from maskgate.stores.idempotency import Create, IdempotentCreate
    from maskgate.wavespeed.client import WaveSpeedClient
    from maskgate.webhooks.notifier import Notifier
    from maskgate.webhooks.sender import WebhookSender
    from maskgate.webhooks.units import DeliveryUnits

# boto3, botocore.config and Powertools' idempotency (which loads boto3) are imported by the first
# client or idempotent create that needs them, not with this module: the api's import (its cold start)
# stays free of the AWS SDK, and its routes that call no AWS service never load it.


@cache
def _config(service: str) -> Config:
    """Timeouts and retries for every client; path-style s3v4 for S3."""
    from botocore.config import Config

    config = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
    if service == "s3":
        return config.merge(Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
    return config


@cache
def s3() -> S3Client:
    import boto3

    return boto3.client("s3", config=_config("s3"))


@cache
def dynamodb() -> DynamoDBClient:
    import boto3

    return boto3.client("dynamodb", config=_config("dynamodb"))


@cache
def stepfunctions() -> SFNClient:
    import boto3

    return boto3.client("stepfunctions", config=_config("stepfunctions"))


@cache
def job_store() -> JobStore:
    settings = get_settings()
    return JobStore(
        table=settings.table,
        client=dynamodb(),
        ttl_days=settings.finished_job_ttl_days,
        on_finish=lambda job: gate().finish(job),
    )


@cache
def gate() -> Gate:
    """The tenants' limits at work: quotas, the spend cap, usage and dry runs."""
    from maskgate.steps.limits import Gate
    from maskgate.stores.limits import LimitStore, Quotas, default_limits
    from maskgate.stores.spend import SpendLedger

    settings = get_settings()
    return Gate(
        limits=LimitStore(
            table=settings.table, client=dynamodb(), tenants=tenant_store(), defaults=default_limits(settings)
        ),
        quotas=Quotas(
            table=settings.table, client=dynamodb(), stale_after_seconds=settings.job_deadline_seconds
        ),
        ledger=SpendLedger(table=settings.table, client=dynamodb()),
        settings=settings,
        notifier=lambda: notifier(),  # looked up when used: built only when a notice is sent
    )


@cache
def tenant_store() -> TenantStore:
    return TenantStore(table=get_settings().table, client=dynamodb())


@cache
def endpoint_store() -> EndpointStore:
    from maskgate.stores.endpoints import EndpointStore

    return EndpointStore(table=get_settings().table, client=dynamodb())


@cache
def bucket() -> Bucket:
    settings = get_settings()
    return Bucket(bucket=settings.bucket, client=s3(), presign_seconds=settings.presign_seconds)


@cache
def workflow() -> Workflow:
    settings = get_settings()
    return Workflow(
        state_machine_arn=settings.state_machine_arn, client=stepfunctions(), timings=timings_of(settings)
    )


def idempotent(create: Create, *, name: str) -> IdempotentCreate:
    """``create`` made idempotent per (tenant, Idempotency-Key) in the jobs table."""
    from maskgate.stores.idempotency import IdempotentCreate

    return IdempotentCreate(table=get_settings().table, client=dynamodb(), create=create, name=name)


@cache
def sqs() -> SQSClient:
    import boto3

    return boto3.client("sqs", config=_config("sqs"))


@cache
def delivery_units() -> DeliveryUnits:
    from maskgate.webhooks.units import DeliveryUnits

    settings = get_settings()
    return DeliveryUnits(
        state_machine_arn=settings.require("delivery_state_machine_arn"),
        stepfunctions=stepfunctions(),
        schedule=settings.webhook_schedule,
        sqs=sqs() if settings.webhook_dlq_url else None,
        dead_letter_url=settings.webhook_dlq_url,
    )


@cache
def notifier() -> Notifier:
    from maskgate.stores.attempt_log import EndpointHealth
    from maskgate.stores.rate_limit import Throttle
    from maskgate.stores.tenant_events import TenantEvents
    from maskgate.webhooks.notifier import Notifier

    settings = get_settings()
    return Notifier(
        jobs=job_store(),
        tenants=tenant_store(),
        sender=webhook_sender(),
        units=delivery_units(),
        settings=settings,
        endpoints=endpoint_store(),
        log=attempt_log(),
        health=EndpointHealth(table=settings.table, client=dynamodb()),
        events=TenantEvents(
            table=settings.table,
            client=dynamodb(),
            retention_days=settings.webhook_attempt_retention_days,
        ),
        throttle=Throttle(table=settings.table, client=dynamodb()),
    )


@cache
def attempt_log() -> AttemptLog:
    from maskgate.stores.attempt_log import AttemptLog

    settings = get_settings()
    return AttemptLog(
        table=settings.table, client=dynamodb(), retention_days=settings.webhook_attempt_retention_days
    )


@cache
def reconciler() -> Reconciler:
    from maskgate.steps.reconcile import Reconciler
    from maskgate.stores.job_index import JobIndex
    from maskgate.workflow.executions import Executions

    settings = get_settings()
    return Reconciler(
        index=JobIndex(table=settings.table, client=dynamodb()),
        jobs=job_store(),
        notifier=notifier(),
        admission=admission(),
        executions=Executions(client=stepfunctions()),
        settings=settings,
        gate=gate(),
    )


@cache
def rate_limiter() -> RateLimiter:
    settings = get_settings()
    return RateLimiter(
        table=settings.table, client=dynamodb(), per_minute=settings.tenant_requests_per_minute
    )


@cache
def admission() -> Admission:
    settings = get_settings()
    return Admission(
        table=settings.table,
        client=dynamodb(),
        concurrency=settings.wavespeed_concurrency,
        per_minute=settings.wavespeed_submits_per_minute,
        stale_after_seconds=settings.job_deadline_seconds,
        wake=wake_waiter,
    )


def wake_waiter(job_id: str) -> None:
    """Wake the parked workflow of a job just handed a WaveSpeed slot (its AwaitSlot task)."""
    job = job_store().get(job_id)
    if job.task_token is not None and not job.status.terminal:
        workflow().wake(job.task_token)


@cache
def result_cache() -> ResultCache:
    from datetime import timedelta

    from maskgate.cache.entries import CacheEntries
    from maskgate.cache.reuse import ResultCache

    settings = get_settings()
    entries = CacheEntries(
        table=settings.table, client=dynamodb(), results_days=settings.finished_job_ttl_days
    )
    # an identical job still unfinished after twice its deadline (and a sweep) is stuck: compute anew
    stale = timedelta(seconds=2 * settings.job_deadline_seconds, minutes=settings.reconcile_interval_minutes)
    return ResultCache(jobs=job_store(), bucket=bucket(), entries=entries, stale_after=stale)


@cache
def upload_expiries() -> UploadExpiries:
    return UploadExpiries(
        state_machine_arn=get_settings().require("upload_expiry_state_machine_arn"), client=stepfunctions()
    )


@cache
def callback_receiver() -> CallbackReceiver:
    from maskgate.steps.callback import CallbackReceiver
    from maskgate.stores.callback_log import CallbackLog

    table = get_settings().table
    log = CallbackLog(table=table, client=dynamodb())
    return CallbackReceiver(jobs=job_store(), workflow=workflow(), log=log, secret=wavespeed_webhook_secret)


def wavespeed_webhook_secret() -> str:
    """WaveSpeed's callback signing secret, read once per container and again after 5 minutes."""
    global _secret_cache
    now = time.monotonic()
    if _secret_cache is None or now - _secret_cache[0] > 300:
        _secret_cache = (now, wavespeed().webhook_secret())
    return _secret_cache[1]


_secret_cache: tuple[float, str] | None = None


@cache
def request_intake() -> RequestIntake:
    from maskgate.steps.api import RequestIntake  # not at import: GET routes and the workers never need it

    return RequestIntake(
        jobs=job_store(),
        bucket=bucket(),
        workflow=workflow(),
        settings=get_settings(),
        gate=gate(),
        result_cache=result_cache,
    )


@cache
def upload_intake() -> UploadIntake:
    from maskgate.steps.on_upload import UploadIntake

    return UploadIntake(
        jobs=job_store(), bucket=bucket(), workflow=workflow(), settings=get_settings(), gate=gate()
    )


@cache
def webhook_sender() -> WebhookSender:
    from maskgate.webhooks.sender import WebhookSender

    settings = get_settings()
    return WebhookSender(local=settings.is_local, attempt_seconds=settings.webhook_attempt_seconds)


def wavespeed() -> WaveSpeedClient:
    """The WaveSpeed client for the current API key (read through Powertools, cached 5 minutes)."""
    key = _secrets().get(get_settings().wavespeed_api_key_secret, max_age=300)
    return _wavespeed_for(str(key))


@cache
def _secrets() -> SecretsProvider:
    """Powertools' Secrets Manager provider on a client with this module's timeouts, built once (its
    module-level default builds a client of its own, with none)."""
    import boto3
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=boto3.client("secretsmanager", config=_config("secretsmanager")))


@lru_cache(maxsize=2)
def _wavespeed_for(api_key: str) -> WaveSpeedClient:
    from maskgate.wavespeed.client import WaveSpeedClient

    settings = get_settings()
    return WaveSpeedClient(
        base_url=settings.wavespeed_base_url,
        api_key=api_key,
        output_hosts=settings.wavespeed_output_hosts,
        local=settings.is_local,
    )


def reset() -> None:
    """Forget every client, store and setting built so far, as a fresh container would: every cached
    factory of this module, the callback secret and the settings. For tests, which change the
    environment and the AWS endpoint within one process; a Lambda container never calls it."""
    global _secret_cache
    get_settings.cache_clear()
    for factory in _CACHED:
        factory.cache_clear()
    _secret_cache = None


class _Cached(Protocol):
    def cache_clear(self) -> None: ...


def _cached_factories() -> tuple[_Cached, ...]:
    """Every ``functools.cache``/``lru_cache`` function defined in this module (found, not listed: a
    factory added later is reset with the rest), taken at import so a test's stand-in cannot hide one."""
    found: list[Any] = [
        value
        for value in globals().values()
        if callable(value)
        and not isinstance(value, type)
        and hasattr(value, "cache_clear")
        and getattr(value, "__module__", None) == __name__
    ]
    return tuple(found)


_CACHED = _cached_factories()  # last in the module: after every factory
