"""The Lambda side of the cold-start and overhead benchmarks: the functions' environment, the first-invoke
scenarios (sample event + the moto resources it needs), a recorder of the AWS calls a handler makes and
a bare replay of the same calls.

Imported by the parent only for constants and the environment; a cold-start child imports it only after
its timed import (boto3, moto and maskgate are imported inside the functions that need them).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "jobs"
BUCKET = f"maskgate-{ACCOUNT}-{REGION}"
JOB_ID = "seg_01KAXJ2N3Y8Z4Q6R7S9T0V1W2X"  # the id in events/*.json
STEPS = ("api", "on_upload", "submit", "poll", "store", "fail", "notify", "deliver", "expire")
UPLOAD_KEY = "uploads/my cat é.png"  # events/on_upload.json's key, URL-decoded
_STATE_MACHINES = ("maskgate-segmentation", "maskgate-webhook-delivery", "maskgate-upload-expiry")
_PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


def state_machine_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"


def function_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default os.environ) without AWS/Powertools/maskgate settings, plus what template.yaml's
    Globals give every function (local values; LogLevel at its default INFO; metrics on, as deployed)."""
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if not k.startswith(("AWS_", "POWERTOOLS_", "MASKGATE_", "WAVESPEED_", "PYTHON"))
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "POWERTOOLS_SERVICE_NAME": "maskgate",
            "POWERTOOLS_METRICS_NAMESPACE": "maskgate",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_METRICS_DISABLED": "false",  # benchmarks/__init__.py would default it to true
            "MASKGATE_ENVIRONMENT": "local",
            "MASKGATE_TABLE": TABLE,
            "MASKGATE_BUCKET": BUCKET,
            "MASKGATE_DEFAULT_TENANT": "default",
            "MASKGATE_STATE_MACHINE_ARN": state_machine_arn("maskgate-segmentation"),
            "MASKGATE_DELIVERY_STATE_MACHINE_ARN": state_machine_arn("maskgate-webhook-delivery"),
            "MASKGATE_UPLOAD_EXPIRY_STATE_MACHINE_ARN": state_machine_arn("maskgate-upload-expiry"),
            "MASKGATE_PUBLIC_API_URL": "https://abc123.execute-api.us-east-1.amazonaws.com",
            "WAVESPEED_BASE_URL": "https://api.wavespeed.test",
            "WAVESPEED_API_KEY_SECRET": "maskgate/wavespeed-api-key",
        }
    )
    return env


# Sample events -----------------------------------------------------------------------------------


def sample_event(name: str) -> Any:
    return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))


def http_event(method: str, path: str, *, body: str | None = None, key: str | None = None) -> dict[str, Any]:
    """A payload-2.0 HTTP API event, shaped as events/api_get_segmentation.json, for any route."""
    event: dict[str, Any] = sample_event("api_get_segmentation")
    event.pop("pathParameters", None)
    route = f"{method} {path}"
    event.update(routeKey=route, rawPath=path)
    event["requestContext"].update(routeKey=route)
    event["requestContext"]["http"].update(method=method, path=path)
    event["headers"].pop("authorization")
    if key is not None:
        event["headers"]["authorization"] = f"Bearer {key}"
    if body is not None:
        event["body"] = body
        event["headers"]["content-length"] = str(len(body.encode()))
    return event


class LambdaContext:
    function_name = "maskgate-bench"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:maskgate-bench"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/maskgate-bench"
    log_stream_name = "2026/11/25/[$LATEST]bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


# First-invoke scenarios --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    key: str
    step: str  # functions/<step>/app.py
    label: str
    did: str  # what the first invoke does, for the report
    bare: str  # what the baseline's first invoke does


SCENARIOS = {
    s.key: s
    for s in (
        Scenario(
            "api_health",
            "api",
            "api GET /v1/health",
            "events/api_get_segmentation.json re-pathed to GET /v1/health, no key: FastAPI route, "
            "no AWS call",
            bare="GET /hello on a bare FastAPI + Mangum + Logger app (payload 2.0)",
        ),
        Scenario(
            "api_create",
            "api",
            "api POST /v1/segmentations",
            "events/api_create_segmentation.json with a real key (data-URI PNG, box prompt, loopback "
            "webhook): auth, rate limit, image stored, job written, execution started -> 202",
            bare="POST /hello on the bare app; the route replays the same AWS calls on bare boto3 clients",
        ),
        Scenario(
            "on_upload",
            "on_upload",
            "on_upload",
            "events/on_upload.json; the object is 12 bytes of text with a valid 'maskgate' prompt: "
            "head, ranged get, not an image -> failed job written, execution started",
            bare="Logger-decorated function replaying the same AWS calls on bare boto3 clients",
        ),
        Scenario(
            "fail",
            "fail",
            "fail",
            "events/fail.json on a queued job: typed error recorded (conditional update) -> failed",
            bare="Logger-decorated function replaying the same AWS calls on bare boto3 clients",
        ),
    )
}


def table_properties() -> dict[str, Any]:
    """template.yaml's JobsTable (the parent reads it once and hands it to every child)."""
    from maskgate_local.template.sam import load_template

    return dict(load_template(ROOT / "template.yaml")["Resources"]["JobsTable"]["Properties"])


def setup_aws(
    *, bucket: bool = True, state_machines: bool = True, table: dict[str, Any] | None = None
) -> Any:
    """Start moto (decorator mode, this process) and create what the functions touch; a boto3 Session of
    its own is used, so the default session the handlers build their clients from stays cold."""
    import boto3
    from moto import mock_aws

    mock_aws().start()
    session = boto3.session.Session(region_name=REGION)
    props = table or table_properties()
    session.client("dynamodb").create_table(
        TableName=TABLE,
        BillingMode=props["BillingMode"],
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
    )
    if bucket:
        session.client("s3").create_bucket(Bucket=BUCKET)
    if state_machines:
        sfn = session.client("stepfunctions")
        role = f"arn:aws:iam::{ACCOUNT}:role/maskgate-states"  # moto does not look the role up
        for name in _STATE_MACHINES:
            sfn.create_state_machine(name=name, definition=_PASS, roleArn=role)
    return session


def _job(status: str, **fields: Any) -> None:
    import boto3

    from maskgate.contracts.job import ImageLocation, Job, JobStatus
    from maskgate.contracts.prompts import Prompts
    from maskgate.stores.jobs import JobStore

    now = datetime.now(UTC)
    job = Job(
        id=JOB_ID,
        tenant="default",
        status=JobStatus(status),
        source="api",
        request=Prompts(prompt="the cat"),
        image=ImageLocation(bucket=BUCKET, key=f"inputs/{JOB_ID}/image.png", width=64, height=48),
        created_at=now,
        updated_at=now,
        **fields,
    )
    client = boto3.session.Session(region_name=REGION).client("dynamodb")
    JobStore(table=TABLE, client=client).create(job)


def api_key() -> str:
    import boto3

    from maskgate.stores.tenants import TenantStore

    client = boto3.session.Session(region_name=REGION).client("dynamodb")
    return TenantStore(table=TABLE, client=client).create_key("default").key


def prepare(key: str, table: dict[str, Any] | None = None) -> Any:
    """Create the state this scenario's first invoke needs (only that); its event."""
    if key == "api_health":
        return http_event("GET", "/v1/health")
    if key == "api_create":
        setup_aws(table=table)
        event = sample_event("api_create_segmentation")
        event["headers"]["authorization"] = f"Bearer {api_key()}"
        return event
    if key == "on_upload":
        session = setup_aws(table=table)
        meta = {"maskgate": json.dumps({"prompt": "the cat"})}
        session.client("s3").put_object(Bucket=BUCKET, Key=UPLOAD_KEY, Body=b"not an image", Metadata=meta)
        return sample_event("on_upload")
    if key == "fail":
        setup_aws(bucket=False, state_machines=False, table=table)
        _job("queued")
        return sample_event("fail")
    raise KeyError(key)


def bare_event(key: str, event: Any) -> Any:
    """The baseline's event: a hello route on the bare app for the api scenarios, else the step's own."""
    if key == "api_health":
        return http_event("GET", "/hello")
    if key == "api_create":
        return http_event("POST", "/hello")
    return event


def outcome(key: str, response: Any) -> str:
    """A short description of what a handler (or a baseline) answered."""
    if isinstance(response, dict) and "statusCode" in response:
        return f"HTTP {response['statusCode']} {str(response.get('body', ''))[:60]}"
    if key == "on_upload" and isinstance(response, dict) and "jobs" in response:
        return "jobs: " + (", ".join(j["status"] for j in response["jobs"]) or "none")
    return json.dumps(response, separators=(",", ":"), default=str)[:80]


# Recording and replaying AWS calls ---------------------------------------------------------------

Call = tuple[str, str, dict[str, Any]]


class CallRecorder:
    """Notes (service, operation, params) of every API call made by clients of sessions created after
    ``install``; botocore reads BUILTIN_HANDLERS when a session is created (as moto's stubber does)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def install(self) -> None:
        from botocore.handlers import BUILTIN_HANDLERS

        BUILTIN_HANDLERS.append(("before-parameter-build", self.record))

    def record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        # no copy here: this runs inside the timed invoke (the parent pickles the calls afterwards)
        self.calls.append((model.service_model.service_name, model.name, params))


def call_names(calls: Iterable[Call]) -> list[str]:
    return [f"{service}.{operation}" for service, operation, _ in calls]


def replayer(calls: list[Call]) -> Callable[[], int]:
    """A function making the same calls on bare boto3 clients (default config, each built on its first
    use and kept); it returns how many calls failed (a replayed conditional write may be refused, at
    about the same cost)."""
    clients: dict[str, Any] = {}

    def replay() -> int:
        import boto3
        from botocore import xform_name
        from botocore.exceptions import BotoCoreError, ClientError

        failed = 0
        for service, operation, params in calls:
            # the stubs type client() by literal service names; these are the recorded ones
            client = clients.get(service) or clients.setdefault(
                service,
                boto3.client(service),  # type: ignore[call-overload]
            )
            try:
                answer = getattr(client, xform_name(operation))(**params)
            except (ClientError, BotoCoreError):
                failed += 1
                continue
            body = answer.get("Body")
            if hasattr(body, "read"):
                body.read()
        return failed

    return replay
