"""Least privilege that is also enough: every AWS call a handler makes in the integration tests is
checked against the IAM policy the template gives that function (as SAM translates it).

moto does not enforce IAM, so without this a policy narrowed one action too far would pass every
test and fail in AWS. ``load_handler`` marks the function a handler call belongs to (a context
variable, which FastAPI's thread pool copies); a wrapper around botocore's ``_make_api_call`` maps
each call to its IAM action and resource ARN and records any the function's role does not allow.
"""

from __future__ import annotations

import contextvars
import fnmatch
import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.client import BaseClient

from maskgate_local.template import sam

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"
# What the integration fixtures create, as the template's logical ids (tests/integration/conftest.py).
FIXTURE_RESOURCES = {
    "JobsTable": ("jobs", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/jobs"),
    "Bucket": (f"maskgate-{ACCOUNT}-{REGION}", f"arn:aws:s3:::maskgate-{ACCOUNT}-{REGION}"),
    "WebhookDeadLetterQueue": (
        f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/webhook-dlq",
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:webhook-dlq",
    ),
}
# S3 operations whose IAM action is not s3:<Operation>
# IAM has no s3:CopyObject: a copy is PutObject on the destination (and GetObject on the source)
S3_ACTIONS = {
    "CopyObject": "PutObject",
    "HeadObject": "GetObject",
    "ListObjectsV2": "ListBucket",
    "ListObjects": "ListBucket",
}

current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_function", default=None
)


@dataclass(frozen=True)
class Call:
    function: str
    action: str
    resource: str | None  # None: the action has no resource in its request (task tokens)

    def __str__(self) -> str:
        return f"{self.function}: {self.action} on {self.resource or '(any)'}"


class _FixtureResolver(sam.Resolver):
    """Resolves the template's Refs to what the fixtures made; other resources get placeholders."""

    def ref(self, name: str) -> Any:
        try:
            return super().ref(name)
        except sam.UnresolvedError:
            return f"<{name}>"

    def get_att(self, logical_id: str, attribute: str) -> Any:
        try:
            return super().get_att(logical_id, attribute)
        except sam.UnresolvedError:
            return f"<{logical_id}.{attribute}>"


@cache
def statements_by_step() -> dict[str, tuple[dict[str, Any], ...]]:
    """functions/<step> → the Allow statements of its role, resolved."""
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    template = sam.load_template(TEMPLATE)
    steps = {  # read before translating: translate() rewrites CodeUri
        logical_id: str(resource["Properties"]["CodeUri"]).strip("/").rsplit("/", 1)[-1]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    values = sam.parameter_values(template, {})
    translated, _ = sam.translate(template, TEMPLATE.parent, values, REGION)
    resolver = _FixtureResolver(
        values,
        region=REGION,
        account_id=ACCOUNT,
        stack_name="maskgate",
        conditions=translated.get("Conditions", {}),
    )
    for logical_id, (ref, arn) in FIXTURE_RESOURCES.items():
        resolver.record(logical_id, ref=ref, Arn=arn, QueueName=ref.rsplit("/", 1)[-1])
    resources = translated["Resources"]
    found: dict[str, tuple[dict[str, Any], ...]] = {}
    for logical_id, step in steps.items():
        role = resources[f"{logical_id}Role"]["Properties"]
        statements: list[dict[str, Any]] = []
        for policy in role.get("Policies", []):
            document = resolver.resolve(policy["PolicyDocument"])
            listed = document["Statement"]
            statements.extend(
                s for s in (listed if isinstance(listed, list) else [listed]) if s["Effect"] == "Allow"
            )
        found[step] = tuple(statements)
    return found


def _listed(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def allowed(step: str, action: str, resource: str | None) -> bool:
    for statement in statements_by_step()[step]:
        if not any(
            fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _listed(statement.get("Action", []))
        ):
            continue
        if resource is None or any(fnmatch.fnmatchcase(resource, r) for r in _listed(statement["Resource"])):
            return True
    return False


TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _dynamodb(operation: str, params: dict[str, Any]) -> list[tuple[str, str | None]]:
    if "TransactItems" in params:  # TransactWriteItems: each item's own action, as IAM checks them
        return [
            (
                f"dynamodb:{TRANSACT_ACTIONS[kind]}",
                f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{item['TableName']}",
            )
            for entry in params["TransactItems"]
            for kind, item in entry.items()
        ]
    if "RequestItems" in params:  # BatchGetItem, BatchWriteItem: one table or more
        return [
            (f"dynamodb:{operation}", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{t}")
            for t in params["RequestItems"]
        ]
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{params['TableName']}"
    if "IndexName" in params:
        table += f"/index/{params['IndexName']}"
    return [(f"dynamodb:{operation}", table)]


def required(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The IAM (action, resource ARN) pairs one API call needs."""
    if service == "dynamodb":
        return _dynamodb(operation, params)
    if service == "s3":
        bucket = f"arn:aws:s3:::{params['Bucket']}"
        if operation in ("ListObjectsV2", "ListObjects"):
            return [("s3:ListBucket", bucket)]
        needs = [(f"s3:{S3_ACTIONS.get(operation, operation)}", f"{bucket}/{params['Key']}")]
        if operation == "CopyObject":
            source = params["CopySource"]
            source = f"{source['Bucket']}/{source['Key']}" if isinstance(source, dict) else source
            needs.append(("s3:GetObject", f"arn:aws:s3:::{source.lstrip('/')}"))
        return needs
    if service == "states":
        arn = params.get("stateMachineArn") or params.get("executionArn")
        return [(f"states:{operation}", arn)]
    if service == "sqs":
        name = urlsplit(params["QueueUrl"]).path.rsplit("/", 1)[-1]
        return [(f"sqs:{operation}", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")]
    if service == "secretsmanager":
        secret = str(params["SecretId"])
        if not secret.startswith("arn:"):
            secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret}-AbCdEf"  # AWS's suffix
        return [(f"secretsmanager:{operation}", secret)]
    return [(f"{service}:{operation}", None)]


class Recorder:
    """Collects the calls a function's role would refuse."""

    def __init__(self) -> None:
        self.refused: list[Call] = []
        self.seen: set[Call] = set()

    def check(self, service: str, operation: str, params: dict[str, Any]) -> None:
        step = current_function.get()
        if step is None:
            return  # a test's own setup call, not a handler's
        for action, resource in required(service, operation, params):
            call = Call(step, action, resource)
            self.seen.add(call)
            if not allowed(step, action, resource):
                self.refused.append(call)


@contextmanager
def recording() -> Iterator[Recorder]:
    """Check every botocore call made inside a handler while the block runs."""
    recorder = Recorder()
    original: Callable[..., Any] = BaseClient._make_api_call

    def checked(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        recorder.check(client.meta.service_model.signing_name, operation, params)
        return original(client, operation, params)

    BaseClient._make_api_call = checked  # type: ignore[method-assign]
    try:
        yield recorder
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def as_function(step: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler`` marked as running in ``functions/<step>`` for the duration of each call."""

    @functools.wraps(handler)
    def marked(*args: Any, **kwargs: Any) -> Any:
        token = current_function.set(step)
        try:
            return handler(*args, **kwargs)
        finally:
            current_function.reset(token)

    return marked
