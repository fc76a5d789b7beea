"""Provision `template.yaml` into moto: the template is the only list of resources.

The SAM template is translated offline with `samtranslator`, then a small walker resolves intrinsics and
creates, in dependency order: IAM roles → SQS queues → DynamoDB tables → the HTTP API → Lambda functions
(and their permissions) → the bucket with its notifications → the state machine → the API routes.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import boto3

from maskgate_local.stack.handlers import FunctionSpec, apply_environment
from maskgate_local.template import sam
from maskgate_local.template.sam import Resolver

_SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_INVOCATION_URI = re.compile(r"functions/(?P<arn>arn:[^/]+)/invocations")


SEGMENTATION = "SegmentationStateMachine"  # the job workflow; others (webhook delivery) sit beside it


class Route(NamedTuple):
    """One HTTP API route: `GET /v1/health` → the function that serves it."""

    method: str
    path: str
    function_name: str


@dataclass(frozen=True)
class Provisioned:
    """What `provision` created, for the stack's other parts (gateway emulator, CLI, tests)."""

    region: str
    endpoint_url: str
    account_id: str
    bucket: str
    table: str
    state_machine_arn: str
    state_machines: dict[str, str]  # logical id → ARN
    functions: dict[str, FunctionSpec]
    routes: list[Route]
    queues: dict[str, str]
    parameters: dict[str, str]
    api_id: str
    environment: dict[str, str]

    def function(self, function_name: str) -> FunctionSpec:
        """The function spec by its function name."""
        return next(spec for spec in self.functions.values() if spec.function_name == function_name)


def provision(
    template_path: Path,
    *,
    parameters: Mapping[str, str],
    endpoint_url: str,
    region: str,
    account_id: str = "123456789012",
    stack_name: str = "maskgate",
    code_dir_override: Callable[[str], Path] | None = None,
    environment_overrides: Mapping[str, str] | None = None,
) -> Provisioned:
    """Create the template's resources in moto at `endpoint_url`; functions' variables go to os.environ."""
    translated, local_paths, values = _translated(template_path, parameters, region)
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)  # noqa: S106
    walker = _Walker(
        translated["Resources"],
        resolver=Resolver(
            values,
            region=region,
            account_id=account_id,
            stack_name=stack_name,
            conditions=translated.get("Conditions", {}),
        ),
        # one client per service (~15 ms to make one; the walker asks once per resource)
        client=functools.cache(lambda service: session.client(service, endpoint_url=endpoint_url)),
        local_paths=local_paths,
        code_dir_override=code_dir_override,
        environment_overrides=dict(environment_overrides or {}),
        stack_name=stack_name,
    )
    walker.run()
    environment = apply_environment(walker.functions.values(), region=region, endpoint_url=endpoint_url)
    return Provisioned(
        region=region,
        endpoint_url=endpoint_url,
        account_id=account_id,
        bucket=walker.single("AWS::S3::Bucket"),
        table=walker.single("AWS::DynamoDB::Table"),
        state_machine_arn=walker.state_machines[SEGMENTATION],
        state_machines=dict(walker.state_machines),
        functions=walker.functions,
        routes=walker.routes,
        queues=walker.queues,
        parameters=values,
        api_id=walker.single("AWS::ApiGatewayV2::Api"),
        environment=environment,
    )


def _translated(
    template_path: Path, parameters: Mapping[str, str], region: str
) -> tuple[dict[str, Any], dict[str, Path], dict[str, str]]:
    """The template translated (SAM → CloudFormation), each resource's local path and the parameter
    values: a copy of this process's translation of the same text, parameters and region when there is
    one (a stack started again in one process, as the tests do, skips ~0.3 s of samtranslator)."""
    text = template_path.read_text(encoding="utf-8")
    key = (text, template_path.resolve().parent, tuple(sorted(parameters.items())), region)
    translated, local_paths, values = _translation(*key)
    return copy.deepcopy(translated), dict(local_paths), dict(values)


@functools.lru_cache(maxsize=8)
def _translation(
    text: str, template_dir: Path, parameters: tuple[tuple[str, str], ...], region: str
) -> tuple[dict[str, Any], dict[str, Path], dict[str, str]]:
    template = sam.parse_template(text)
    values = sam.parameter_values(template, dict(parameters))
    translated, local_paths = sam.translate(template, template_dir, values, region)
    return translated, local_paths, values


class _Walker:
    """Creates the translated resources in dependency order and remembers what it made."""

    _CREATORS: ClassVar[dict[str, str]] = {  # in dependency order
        "AWS::IAM::Role": "_role",
        "AWS::SQS::Queue": "_queue",
        "AWS::DynamoDB::Table": "_table",
        "AWS::ApiGatewayV2::Api": "_api",
        "AWS::Lambda::Function": "_function",
        "AWS::Lambda::Permission": "_permission",
        "AWS::S3::Bucket": "_bucket",
        "AWS::StepFunctions::StateMachine": "_state_machine",
    }

    def __init__(
        self,
        resources: dict[str, Any],
        *,
        resolver: Resolver,
        client: Callable[[str], Any],
        local_paths: dict[str, Path],
        code_dir_override: Callable[[str], Path] | None,
        environment_overrides: dict[str, str],
        stack_name: str,
    ) -> None:
        self.resources = resources
        self.resolver = resolver
        self.client = client
        self.local_paths = local_paths
        self.code_dir_override = code_dir_override
        self.overrides = environment_overrides
        self.stack_name = stack_name
        self.functions: dict[str, FunctionSpec] = {}
        self.queues: dict[str, str] = {}
        self.routes: list[Route] = []
        self.state_machines: dict[str, str] = {}
        self.created: dict[str, list[str]] = {}

    def run(self) -> None:
        for resource_type, creator in self._CREATORS.items():
            for logical_id, properties in self._of_type(resource_type):
                ref = getattr(self, creator)(logical_id, properties)
                self.created.setdefault(resource_type, []).append(ref)
        for logical_id, properties in self._of_type("AWS::ApiGatewayV2::Api"):
            self._routes(logical_id, properties)

    def single(self, resource_type: str) -> str:
        refs = self.created.get(resource_type, [])
        if len(refs) != 1:
            raise ValueError(f"expected one {resource_type} in the template, found {len(refs)}")
        return refs[0]

    def _of_type(self, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource["Type"] != resource_type:
                continue
            if "Condition" in resource and not self.resolver.condition(resource["Condition"]):
                continue  # as CloudFormation: a resource whose Condition is false is not created
            yield logical_id, resource.get("Properties", {})

    def _name(self, logical_id: str, given: Any, limit: int = 64) -> str:
        return str(self.resolver.resolve(given)) if given else f"{self.stack_name}-{logical_id}"[:limit]

    def _role(self, logical_id: str, properties: dict[str, Any]) -> str:
        name = self._name(logical_id, properties.get("RoleName"))
        document = json.dumps(self.resolver.resolve(properties["AssumeRolePolicyDocument"]))
        arn = self.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=document)["Role"]["Arn"]
        self.resolver.record(logical_id, ref=name, Arn=arn)
        return name

    def _queue(self, logical_id: str, properties: dict[str, Any]) -> str:
        name = self._name(logical_id, properties.get("QueueName"), limit=80)
        attributes = sam.queue_attributes(self.resolver.resolve(properties))
        url = str(self.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
        arn = f"arn:aws:sqs:{self.resolver.region}:{self.resolver.account_id}:{name}"
        self.resolver.record(logical_id, ref=url, Arn=arn, QueueName=name, QueueUrl=url)
        self.queues[logical_id] = url
        return url

    def _table(self, logical_id: str, properties: dict[str, Any]) -> str:
        props = self.resolver.resolve(properties)
        name = self._name(logical_id, props.get("TableName"), limit=255)
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput"):
            if key in props:
                request[key] = props[key]
        dynamodb = self.client("dynamodb")
        arn = dynamodb.create_table(**request)["TableDescription"]["TableArn"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        self.resolver.record(logical_id, ref=name, Arn=arn)
        return name

    def _api(self, logical_id: str, properties: dict[str, Any]) -> str:
        title = self.resolver.resolve(properties.get("Body", {}).get("info", {}).get("title", logical_id))
        api_id = str(self.client("apigatewayv2").create_api(Name=str(title), ProtocolType="HTTP")["ApiId"])
        self.resolver.record(logical_id, ref=api_id, ApiId=api_id)
        return api_id

    def _function(self, logical_id: str, properties: dict[str, Any]) -> str:
        props = self.resolver.resolve({key: value for key, value in properties.items() if key != "Layers"})
        name = self._name(logical_id, props.get("FunctionName"))
        environment = {**props.get("Environment", {}).get("Variables", {}), **self.overrides}
        environment = {key: str(value) for key, value in environment.items()}
        request: dict[str, Any] = {
            "FunctionName": name,
            "Role": props["Role"],
            "Handler": props["Handler"],
            "Runtime": props["Runtime"],
            "Code": {"ZipFile": _placeholder_zip()},
            "Timeout": int(props.get("Timeout", 3)),
            "MemorySize": int(props.get("MemorySize", 128)),
            "Environment": {"Variables": environment},
            "Description": props.get("Description", ""),
            "Architectures": props.get("Architectures", ["x86_64"]),
        }
        dead_letter = props.get("DeadLetterConfig", {}).get("TargetArn")
        if dead_letter:
            request["DeadLetterConfig"] = {"TargetArn": dead_letter}
        arn = self.client("lambda").create_function(**request)["FunctionArn"]
        if "ReservedConcurrentExecutions" in props:  # recorded (moto does not throttle by it)
            self.client("lambda").put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=int(props["ReservedConcurrentExecutions"])
            )
        self.resolver.record(logical_id, ref=name, Arn=arn)
        self.functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            function_name=name,
            handler=request["Handler"],
            code_dir=self.code_dir_override(logical_id)
            if self.code_dir_override
            else self.local_paths[logical_id],
            environment=environment,
            timeout=request["Timeout"],
            memory_mb=request["MemorySize"],
            region=self.resolver.region,
            account_id=self.resolver.account_id,
            dead_letter_queue_arn=dead_letter,
        )
        return name

    def _permission(self, logical_id: str, properties: dict[str, Any]) -> str:
        props = self.resolver.resolve(properties)
        request = {
            "FunctionName": props["FunctionName"],
            "StatementId": logical_id,
            "Action": props["Action"],
            "Principal": props["Principal"],
        }
        request.update({key: props[key] for key in ("SourceAccount", "SourceArn") if key in props})
        self.client("lambda").add_permission(**request)
        return logical_id

    def _bucket(self, logical_id: str, properties: dict[str, Any]) -> str:
        props = self.resolver.resolve(properties)
        name = self._name(logical_id, props.get("BucketName"), limit=63).lower()
        s3 = self.client("s3")
        if self.resolver.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.resolver.region}
            )
        lambdas = props.get("NotificationConfiguration", {}).get("LambdaConfigurations", [])
        if lambdas:
            s3.put_bucket_notification_configuration(
                Bucket=name,
                NotificationConfiguration={
                    "LambdaFunctionConfigurations": [sam.lambda_notification(c) for c in lambdas]
                },
            )
        self.resolver.record(logical_id, ref=name, Arn=f"arn:aws:s3:::{name}")
        return name

    def _state_machine(self, logical_id: str, properties: dict[str, Any]) -> str:
        props = self.resolver.resolve({key: value for key, value in properties.items() if key != "Tags"})
        name = self._name(logical_id, props.get("StateMachineName"), limit=80)
        if logical_id in self.local_paths:
            definition = self.local_paths[logical_id].read_text(encoding="utf-8")
        else:
            definition = props.get("DefinitionString") or json.dumps(props["Definition"])
        substitutions = {key: str(value) for key, value in props.get("DefinitionSubstitutions", {}).items()}
        definition = _SUBSTITUTION.sub(lambda m: substitutions.get(m.group(1), m.group(0)), definition)
        arn = self.client("stepfunctions").create_state_machine(
            name=name,
            definition=definition,
            roleArn=props["RoleArn"],
            type=props.get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        self.resolver.record(logical_id, ref=arn, Arn=arn, Name=name)
        self.state_machines[logical_id] = str(arn)
        return str(arn)

    def _routes(self, logical_id: str, properties: dict[str, Any]) -> None:
        api_id = self.resolver.ref(logical_id)
        apigateway = self.client("apigatewayv2")
        by_arn = {spec.arn: spec.function_name for spec in self.functions.values()}
        integrations: dict[str, str] = {}
        for path, operations in self.resolver.resolve(properties.get("Body", {}).get("paths", {})).items():
            for operation, spec in operations.items():
                method = "ANY" if operation == "x-amazon-apigateway-any-method" else operation.upper()
                uri = spec["x-amazon-apigateway-integration"]["uri"]
                match = _INVOCATION_URI.search(uri)
                function_arn = match.group("arn") if match else uri
                if function_arn not in integrations:
                    integrations[function_arn] = apigateway.create_integration(
                        ApiId=api_id,
                        IntegrationType="AWS_PROXY",
                        IntegrationMethod="POST",
                        IntegrationUri=function_arn,
                        PayloadFormatVersion="2.0",
                    )["IntegrationId"]
                apigateway.create_route(
                    ApiId=api_id,
                    RouteKey=f"{method} {path}",
                    Target=f"integrations/{integrations[function_arn]}",
                )
                self.routes.append(Route(method, path, by_arn[function_arn]))


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "# the local stack runs the real handler in-process\n")
    return buffer.getvalue()
