"""Integration fixtures: each handler on moto (decorator mode), with tables and buckets built from
template.yaml and the outside (WaveSpeed, webhook receivers) behind httpx.MockTransport."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from maskgate import clients
from maskgate.stores.tenants import TenantStore
from maskgate.wavespeed.client import WaveSpeedClient
from maskgate.webhooks.sender import WebhookSender
from tests.support import iam
from tests.support.artefacts import ASL, load_handler, template_resource, template_variables
from tests.support.fakes import OUTPUT_HOST, FakeWaveSpeed, Receiver

REGION = "us-east-1"
BUCKET = "maskgate-123456789012-us-east-1"
SECRET_NAME = "maskgate/wavespeed-api-key"


@pytest.fixture(autouse=True)
def iam_allows_every_call() -> Iterator[None]:
    """Every AWS call a handler makes here must be allowed by that function's role in template.yaml."""
    with iam.recording() as recorder:
        yield
    refused = sorted(set(map(str, recorder.refused)))
    assert not refused, "template.yaml's IAM does not allow:\n  " + "\n  ".join(refused)


@dataclass
class Aws:
    table: str
    bucket: str
    state_machine_arn: str
    api_key: str
    tenant: str
    secret: str

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def executions(self, arn: str | None = None) -> list[str]:
        found = self.client("stepfunctions").list_executions(stateMachineArn=arn or self.state_machine_arn)
        return [e["name"] for e in found["executions"]]

    def delivery_units(self) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        arn = os.environ["MASKGATE_DELIVERY_STATE_MACHINE_ARN"]
        runs = sfn.list_executions(stateMachineArn=arn)["executions"]
        return [
            {"name": r["name"], **json.loads(sfn.describe_execution(executionArn=r["executionArn"])["input"])}
            for r in runs
        ]

    def dead_letters(self) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        url = os.environ["MASKGATE_WEBHOOK_DLQ_URL"]
        found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in found]


def _create_table(name: str) -> None:
    props = template_resource("JobsTable")
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name,
        BillingMode=props["BillingMode"],
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
    )


def _create_delivery_state_machine(role: str) -> str:
    definition = (
        (ASL.parent / "webhook-delivery.asl.json")
        .read_text()
        .replace("${DeliverFunctionArn}", f"arn:aws:lambda:{REGION}:123456789012:function:Deliver")
    )
    sfn = boto3.client("stepfunctions", region_name=REGION)
    return sfn.create_state_machine(name="maskgate-webhook-delivery", definition=definition, roleArn=role)[
        "stateMachineArn"
    ]


def _create_state_machine() -> str:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    os.environ["MASKGATE_DELIVERY_STATE_MACHINE_ARN"] = _create_delivery_state_machine(role)
    expiry = (
        (ASL.parent / "upload-expiry.asl.json")
        .read_text()
        .replace("${ExpireFunctionArn}", f"arn:aws:lambda:{REGION}:123456789012:function:Expire")
    )
    os.environ["MASKGATE_UPLOAD_EXPIRY_STATE_MACHINE_ARN"] = boto3.client(
        "stepfunctions", region_name=REGION
    ).create_state_machine(name="maskgate-upload-expiry", definition=expiry, roleArn=role)["stateMachineArn"]
    definition = ASL.read_text()
    for name in ("Submit", "Poll", "Store", "Fail", "Notify"):
        definition = definition.replace(
            f"${{{name}FunctionArn}}", f"arn:aws:lambda:{REGION}:123456789012:function:{name}"
        )
    for name, value in (("PollInitialSeconds", "1"), ("PollMaxSeconds", "2"), ("JobDeadlineSeconds", "60")):
        definition = definition.replace(f"${{{name}}}", value)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    return sfn.create_state_machine(name="maskgate-segmentation", definition=definition, roleArn=role)[
        "stateMachineArn"
    ]


# What a function's environment holds here: every variable template.yaml gives a function (Globals' and
# each function's own), by name, each with its test value; MOTO: set by the aws fixture once moto has
# made the resource; None: left unset, so the setting's default applies. A variable the template sets
# and this table misses fails every test of the folder (test_fixture_environment.py names it).
MOTO = object()
ENVIRONMENT: dict[str, str | object | None] = {
    "POWERTOOLS_SERVICE_NAME": "maskgate",
    "POWERTOOLS_METRICS_NAMESPACE": "maskgate",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "MASKGATE_ENVIRONMENT": "local",
    "MASKGATE_TABLE": "jobs",
    "MASKGATE_BUCKET": BUCKET,
    "MASKGATE_STATE_MACHINE_ARN": MOTO,
    "MASKGATE_DELIVERY_STATE_MACHINE_ARN": MOTO,
    "MASKGATE_UPLOAD_EXPIRY_STATE_MACHINE_ARN": MOTO,
    "MASKGATE_WEBHOOK_DLQ_URL": MOTO,
    "MASKGATE_WEBHOOK_SCHEDULE": "5,300,1800",
    "MASKGATE_DEFAULT_TENANT": "default",
    "MASKGATE_DEFAULT_REQUEST": None,
    "MASKGATE_PUBLIC_API_URL": "http://127.0.0.1:3000",
    "MASKGATE_UPLOAD_SECONDS": None,
    "MASKGATE_TENANT_REQUESTS_PER_MINUTE": None,
    "MASKGATE_TENANT_MAX_JOBS_IN_FLIGHT": None,
    "MASKGATE_TENANT_JOBS_PER_MINUTE": None,
    "MASKGATE_TENANT_IMAGES_PER_DAY": None,
    "MASKGATE_TENANT_MONTHLY_SPEND_CAP_USD": None,
    "MASKGATE_TENANT_SPEND_THRESHOLD": None,
    "MASKGATE_FINISHED_JOB_TTL_DAYS": None,
    "MASKGATE_ENDPOINT_DISABLE_AFTER_SECONDS": None,
    "MASKGATE_WEBHOOK_ATTEMPT_RETENTION_DAYS": None,
    "MASKGATE_POLL_INITIAL_SECONDS": None,
    "MASKGATE_POLL_MAX_SECONDS": None,
    "MASKGATE_JOB_DEADLINE_SECONDS": None,
    "MASKGATE_RECONCILE_INTERVAL_MINUTES": None,
    "MASKGATE_RECONCILE_GRACE_SECONDS": None,
    "WAVESPEED_CONCURRENCY": None,
    "WAVESPEED_SUBMITS_PER_MINUTE": None,
    "WAVESPEED_BASE_URL": "https://api.wavespeed.test",
    "WAVESPEED_API_KEY_SECRET": SECRET_NAME,
    "WAVESPEED_OUTPUT_HOSTS": OUTPUT_HOST,
}
AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def _function_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The template's variables from ENVIRONMENT: a name it misses fails here, naming it."""
    missing = sorted(template_variables() - ENVIRONMENT.keys())
    assert not missing, f"template.yaml sets {missing}: give each a test value in ENVIRONMENT"
    for name, value in ENVIRONMENT.items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
        elif value is MOTO:
            monkeypatch.setenv(name, "set once moto has made it")
        else:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for key, value in AWS_ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    _function_environment(monkeypatch)
    with mock_aws():
        _create_table("jobs")
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=SECRET_NAME, SecretString=FakeWaveSpeed.api_key
        )
        arn = _create_state_machine()  # and the delivery and upload-expiry machines
        monkeypatch.setenv("MASKGATE_STATE_MACHINE_ARN", arn)
        dlq = boto3.client("sqs", region_name=REGION).create_queue(QueueName="webhook-dlq")["QueueUrl"]
        monkeypatch.setenv("MASKGATE_WEBHOOK_DLQ_URL", dlq)
        clients.reset()
        key = TenantStore(table="jobs", client=boto3.client("dynamodb", region_name=REGION)).create_key(
            "default"
        )
        secret = clients.tenant_store().webhook_secrets("default")[0]
        yield Aws(
            table="jobs",
            bucket=BUCKET,
            state_machine_arn=arn,
            api_key=key.key,
            tenant="default",
            secret=secret,
        )
        clients.reset()


@pytest.fixture
def api(aws: Aws) -> Any:
    """The api function, imported as Lambda would (a test module may override it, e.g. to fix a secret)."""
    return load_handler("api")


@pytest.fixture
def wavespeed(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> FakeWaveSpeed:
    fake = FakeWaveSpeed()
    client = WaveSpeedClient(
        base_url="https://api.wavespeed.test",
        api_key=fake.api_key,
        output_hosts=(OUTPUT_HOST,),
        transport=httpx.MockTransport(fake),
        resolver=lambda host: ["93.184.215.14"],  # a public address: no DNS in tests
    )
    monkeypatch.setattr(clients, "_wavespeed_for", lambda key: client if key == fake.api_key else None)
    return fake


@dataclass
class FakeTasks:
    """Stands in for Step Functions' SendTaskSuccess / SendTaskFailure (decorator-mode moto has no
    waiting tasks); records every call and answers as a waiting task would, unless ``gone``."""

    gone: bool = False
    calls: list[tuple[str, str, Any]] = field(default_factory=list)

    def send_task_success(self, *, taskToken: str, output: str) -> None:  # boto3 names
        self._answer(("success", taskToken, json.loads(output)))

    def send_task_failure(self, *, taskToken: str, error: str, cause: str) -> None:
        self._answer(("failure", taskToken, {"error": error, "cause": cause}))

    def _answer(self, call: tuple[str, str, Any]) -> None:
        self.calls.append(call)
        if self.gone:
            raise self.exceptions.TaskTimedOut({"Error": {"Code": "TaskTimedOut"}}, "SendTask")

    def __getattr__(self, name: str) -> Any:  # everything else is the real (moto) client
        return getattr(boto3.client("stepfunctions", region_name=REGION), name)


@pytest.fixture
def tasks(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> FakeTasks:
    fake = FakeTasks()
    workflow = clients.workflow()
    monkeypatch.setattr(workflow, "_client", fake)
    return fake


@pytest.fixture
def receiver(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    fake = Receiver()
    sender = WebhookSender(local=True, transport=httpx.MockTransport(fake))
    monkeypatch.setattr(clients, "webhook_sender", lambda: sender)
    return fake


def problem(response: dict[str, Any]) -> dict[str, Any]:
    assert response["headers"]["content-type"] == "application/problem+json"
    return dict(json.loads(response["body"]))


@pytest.fixture
def atomic_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies a conditional write atomically; moto in this process, called from several
    threads at once, does not (the local stack serialises its DynamoDB requests for the same reason).
    The whole request runs under the lock, its answer's serialisation included: a GetItem's item read
    while another thread's UpdateItem changed it failed "dictionary changed size during iteration"."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()  # re-entrant: a transaction may apply its items through the others
    backend = ("put_item", "get_item", "update_item", "transact_write_items")
    for owner, name in ((DynamoHandler, "call_action"), *((DynamoDBBackend, name) for name in backend)):
        original = getattr(owner, name)

        def serialised(
            *args: object, _original: Callable[..., object] = original, **kwargs: object
        ) -> object:
            with lock:
                return _original(*args, **kwargs)

        monkeypatch.setattr(owner, name, serialised)
