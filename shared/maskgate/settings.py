"""Settings: one typed object read from the environment on first use and cached.

``os.environ`` is read nowhere else. What every function needs (the table, the bucket, the workflow) is
checked when the settings are first read; what only some functions need is ``None`` when unset and
checked where it is used (``Settings.require``). Either way the failure is ``NotConfigured``, naming
the environment variable, at the first invocation that needs it.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from maskgate.errors import NotConfigured

MODEL = "wavespeed-ai/sam3-image"  # the one model maskgate sends jobs to


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    environment: Literal["aws", "local"] = "aws"
    table: str
    bucket: str
    state_machine_arn: str
    default_tenant: str = "default"
    default_request: str | None = None
    finished_job_ttl_days: int = 30
    poll_initial_seconds: int = Field(default=10, ge=1)
    poll_max_seconds: int = Field(default=30, ge=1)
    job_deadline_seconds: int = Field(default=900, ge=10)
    wavespeed_base_url: str = "https://api.wavespeed.ai"
    wavespeed_api_key_secret: str = "maskgate/wavespeed-api-key"  # noqa: S105 (a secret name)
    wavespeed_output_hosts: tuple[str, ...] = ("*.wavespeed.ai", "*.cloudfront.net")
    public_api_url: str | None = None
    # Where /docs loads Swagger UI's script and styles from: unset, a CDN (the layer ships no UI assets);
    # the local stack serves them itself so the page renders offline
    docs_assets_url: str | None = None
    delivery_state_machine_arn: str | None = None
    upload_expiry_state_machine_arn: str | None = None
    tenant_requests_per_minute: int = Field(default=600, ge=1)
    wavespeed_concurrency: int = Field(default=2, ge=0)  # WaveSpeed Bronze tier; 0 = no slot check
    wavespeed_submits_per_minute: int = Field(default=2, ge=0)  # Bronze; 0 = no per-minute check
    upload_seconds: int = Field(default=900, ge=60, le=7 * 24 * 3600)
    webhook_dlq_url: str | None = None
    webhook_schedule: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_attempt_seconds: int = Field(default=10, ge=1, le=15)  # one attempt, end to end
    endpoint_disable_after_seconds: int = Field(default=5 * 24 * 3600, ge=1)  # failing this long: disabled
    webhook_attempt_retention_days: int = Field(default=30, ge=1)  # an endpoint's attempt log
    max_body_bytes: int = 5 * 1024 * 1024
    presign_seconds: int = Field(default=3600, ge=60)
    mask_link_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    reconcile_interval_minutes: int = Field(default=15, ge=1, le=1440)  # how often the sweep runs
    reconcile_grace_seconds: int = Field(default=120, ge=0)  # younger jobs are left to the normal flow
    # every tenant's limits unless `maskgate tenants set-limits` gave it its own (0: no quota)
    tenant_max_jobs_in_flight: int = Field(default=0, ge=0)
    tenant_jobs_per_minute: int = Field(default=0, ge=0)
    tenant_images_per_day: int = Field(default=0, ge=0)
    tenant_monthly_spend_cap_usd: float | None = Field(default=100.0, ge=0)  # None: no cap
    tenant_spend_threshold: float = Field(default=0.8, gt=0, le=1)
    # the price of one image at WaveSpeed, per model, in micro-dollars ($0.005 = 5,000)
    model_prices_micros: dict[str, int] = {"wavespeed-ai/sam3-image": 5_000}
    # AWS cost of one job on the callback path, from the cost model (benchmarks/cost), in micro-dollars
    aws_cost_per_job_micros: int = 95

    @field_validator(
        "default_request",
        "public_api_url",
        "docs_assets_url",
        "delivery_state_machine_arn",
        "upload_expiry_state_machine_arn",
        "webhook_dlq_url",
        "tenant_monthly_spend_cap_usd",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable (a template parameter left blank) is an unset one."""
        return None if value == "" else value

    def require(self, field: str) -> str:
        """An optional setting this function needs; ``NotConfigured`` naming its variable if unset."""
        value = getattr(self, field)
        if not value:
            raise NotConfigured(f"{_ENV[field]} is not set; this function needs it")
        return str(value)

    @property
    def is_local(self) -> bool:
        return self.environment == "local"

    def price_micros(self, model: str = MODEL) -> int:
        """What one image costs at WaveSpeed with this model, in micro-dollars."""
        return self.model_prices_micros[model]

    def callback_url(self, job_id: str) -> str | None:
        """Where WaveSpeed calls back for this job (None when the API URL is unknown: poll only)."""
        if not self.public_api_url:
            return None
        return f"{self.public_api_url.rstrip('/')}/v1/callbacks/wavespeed?job={job_id}"


_ENV = {
    "environment": "MASKGATE_ENVIRONMENT",
    "table": "MASKGATE_TABLE",
    "bucket": "MASKGATE_BUCKET",
    "state_machine_arn": "MASKGATE_STATE_MACHINE_ARN",
    "default_tenant": "MASKGATE_DEFAULT_TENANT",
    "default_request": "MASKGATE_DEFAULT_REQUEST",
    "finished_job_ttl_days": "MASKGATE_FINISHED_JOB_TTL_DAYS",
    "poll_initial_seconds": "MASKGATE_POLL_INITIAL_SECONDS",
    "poll_max_seconds": "MASKGATE_POLL_MAX_SECONDS",
    "job_deadline_seconds": "MASKGATE_JOB_DEADLINE_SECONDS",
    "wavespeed_base_url": "WAVESPEED_BASE_URL",
    "wavespeed_api_key_secret": "WAVESPEED_API_KEY_SECRET",
    "wavespeed_output_hosts": "WAVESPEED_OUTPUT_HOSTS",
    "public_api_url": "MASKGATE_PUBLIC_API_URL",
    "docs_assets_url": "MASKGATE_DOCS_ASSETS_URL",
    "delivery_state_machine_arn": "MASKGATE_DELIVERY_STATE_MACHINE_ARN",
    "upload_expiry_state_machine_arn": "MASKGATE_UPLOAD_EXPIRY_STATE_MACHINE_ARN",
    "upload_seconds": "MASKGATE_UPLOAD_SECONDS",
    "tenant_requests_per_minute": "MASKGATE_TENANT_REQUESTS_PER_MINUTE",
    "wavespeed_concurrency": "WAVESPEED_CONCURRENCY",
    "wavespeed_submits_per_minute": "WAVESPEED_SUBMITS_PER_MINUTE",
    "webhook_dlq_url": "MASKGATE_WEBHOOK_DLQ_URL",
    "webhook_schedule": "MASKGATE_WEBHOOK_SCHEDULE",
    "webhook_attempt_seconds": "MASKGATE_WEBHOOK_ATTEMPT_SECONDS",
    "endpoint_disable_after_seconds": "MASKGATE_ENDPOINT_DISABLE_AFTER_SECONDS",
    "webhook_attempt_retention_days": "MASKGATE_WEBHOOK_ATTEMPT_RETENTION_DAYS",
    "reconcile_interval_minutes": "MASKGATE_RECONCILE_INTERVAL_MINUTES",
    "reconcile_grace_seconds": "MASKGATE_RECONCILE_GRACE_SECONDS",
    "tenant_max_jobs_in_flight": "MASKGATE_TENANT_MAX_JOBS_IN_FLIGHT",
    "tenant_jobs_per_minute": "MASKGATE_TENANT_JOBS_PER_MINUTE",
    "tenant_images_per_day": "MASKGATE_TENANT_IMAGES_PER_DAY",
    "tenant_monthly_spend_cap_usd": "MASKGATE_TENANT_MONTHLY_SPEND_CAP_USD",
    "tenant_spend_threshold": "MASKGATE_TENANT_SPEND_THRESHOLD",
}


def settings_from(environ: dict[str, str]) -> Settings:
    """Build settings from an environment mapping (absent keys take their defaults)."""
    values: dict[str, object] = {}
    for field, name in _ENV.items():
        if name in environ:
            values[field] = environ[name]
    hosts = values.get("wavespeed_output_hosts")
    if isinstance(hosts, str):
        values["wavespeed_output_hosts"] = tuple(h.strip() for h in hosts.split(",") if h.strip())
    schedule = values.get("webhook_schedule")
    if isinstance(schedule, str):
        values["webhook_schedule"] = tuple(int(s) for s in schedule.split(",") if s.strip())
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_ENV.get(str(e['loc'][0]), e['loc'][0]) if e['loc'] else 'settings'}: "
            + ("is not set" if e["type"] == "missing" else e["msg"])
            for e in exc.errors()
        )
        raise NotConfigured(f"invalid settings: {problems}") from None


@cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return settings_from(dict(os.environ))
