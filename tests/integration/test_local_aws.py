"""The AWS half of the local stack: moto provisioned from template.yaml, Lambdas dispatched in-process.

Runs moto in this process (no `mock_aws` here: it would reroute the workflow's Lambda calls). The
functions are fakes written to a temporary folder, so the machinery is tested apart from the handlers.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sys
import textwrap
import threading
import time
import types
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from maskgate_local.stack.aws import LocalAws
from maskgate_local.stack.handlers import FunctionSpec
from maskgate_local.stack.provision import Provisioned, provision

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
PARAMETERS = {
    "Environment": "local",
    "PollInitialSeconds": "1",
    "PollMaxSeconds": "2",
    "JobDeadlineSeconds": "30",
    "WaveSpeedBaseUrl": "http://127.0.0.1:9",
    "SubmitReservedConcurrency": "5",  # a Fn::If property: set here, left out by default
}
RECORDER = "maskgate_test_recorder"

FAKES = {
    "OnUploadFunction": """
        from urllib.parse import unquote_plus
        import boto3
        from maskgate_test_recorder import record, put_returned

        def handler(event, context):
            s3 = event["Records"][0]["s3"]
            key = unquote_plus(s3["object"]["key"])
            head = boto3.client("s3").head_object(Bucket=s3["bucket"]["name"], Key=key)
            record("OnUploadFunction", {"event": event, "metadata": head["Metadata"],
                   "content_type": head["ContentType"], "after_response": put_returned.wait(5)})
            if "fail" in key:
                raise RuntimeError("refused " + key)
    """,
    "SubmitFunction": """
        import json
        import boto3
        from maskgate_test_recorder import record

        class UpstreamFailed(Exception):
            pass

        class JobNotSubmittable(Exception):
            pass

        def handler(event, context):
            record("SubmitFunction", event)
            if event["job_id"].startswith("upstream-failed"):
                raise UpstreamFailed("the prediction failed")
            if event["job_id"].startswith("rejected"):
                raise JobNotSubmittable("no")
            if event["job_id"].startswith("callback"):  # an instant callback resumes the waiting task
                result = {"job_id": event["job_id"], "prediction_id": "p"}
                boto3.client("stepfunctions").send_task_success(
                    taskToken=event["task_token"], output=json.dumps(result))
            return {}
    """,
    "PollFunction": """
        import json
        import boto3
        from maskgate_test_recorder import record

        def handler(event, context):  # the prediction is done: resume this very task
            record("PollFunction", event)
            result = {"job_id": event["job_id"], "prediction_id": "p"}
            sfn = boto3.client("stepfunctions")
            sfn.send_task_success(taskToken=event["task_token"], output=json.dumps(result))
            return {}
    """,
}
ECHO = """
    from maskgate_test_recorder import record

    def handler(event, context):
        record({name!r}, event)
        return event
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "")
    return buffer.getvalue()


def _template_resources() -> dict[str, Any]:
    """template.yaml read independently of the code under test: tags are dropped, not interpreted."""

    class AnyTag(yaml.SafeLoader):
        pass

    AnyTag.add_multi_constructor("!", lambda *_: None)
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=AnyTag)["Resources"]  # noqa: S506 (a SafeLoader)


def _wait_for(condition, timeout: float, interval: float = 0.05):
    """Poll `condition` until it holds or `timeout` seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value


@pytest.fixture(scope="module")
def recorder() -> Iterator[types.SimpleNamespace]:
    module = types.ModuleType(RECORDER)
    lock = threading.Lock()
    module.events = {}
    module.put_returned = threading.Event()

    def record(function: str, event: Any) -> None:
        with lock:
            module.events.setdefault(function, []).append(event)

    module.record = record
    sys.modules[RECORDER] = module
    yield module
    del sys.modules[RECORDER]


@pytest.fixture(scope="module")
def fake_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("functions")
    for logical_id, resource in _template_resources().items():
        if resource["Type"] == "AWS::Serverless::Function":
            source = FAKES.get(logical_id, ECHO.format(name=logical_id))
            (root / logical_id).mkdir()
            (root / logical_id / "app.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def stack(recorder, fake_code: Path) -> Iterator[tuple[LocalAws, Provisioned]]:
    saved_environment = dict(os.environ)
    aws = LocalAws(port=_free_port())
    aws.start()
    try:
        provisioned = provision(
            TEMPLATE,
            parameters=PARAMETERS,
            endpoint_url=aws.endpoint_url,
            region="us-east-1",
            code_dir_override=lambda logical_id: fake_code / logical_id,
        )
        aws.register(provisioned.functions.values())
        yield aws, provisioned
    finally:
        aws.stop()
        os.environ.clear()
        os.environ.update(saved_environment)


@pytest.fixture(autouse=True)
def fresh_recorder(recorder) -> None:
    recorder.events.clear()
    recorder.put_returned.clear()


@pytest.fixture
def events(recorder) -> dict[str, list[Any]]:
    """What the fake functions recorded in this test; uploads are not held back."""
    recorder.put_returned.set()
    return recorder.events


def test_provision_creates_every_function_of_the_template(stack):
    aws, provisioned = stack
    expected = {lid for lid, r in _template_resources().items() if r["Type"] == "AWS::Serverless::Function"}

    names = {f["FunctionName"] for f in aws.client("lambda").list_functions()["Functions"]}

    assert set(provisioned.functions) == expected
    assert {spec.function_name for spec in provisioned.functions.values()} <= names


def test_provision_applies_conditional_properties(stack):
    aws, provisioned = stack
    lam = aws.client("lambda")
    submit = provisioned.functions["SubmitFunction"].function_name
    poll = provisioned.functions["PollFunction"].function_name
    assert lam.get_function_concurrency(FunctionName=submit)["ReservedConcurrentExecutions"] == 5
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=poll)


def test_provision_creates_table_bucket_queue_and_state_machine(stack):
    aws, provisioned = stack
    resources = _template_resources()
    table = next(r for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table")["Properties"]

    described = aws.client("dynamodb").describe_table(TableName=provisioned.table)["Table"]
    ttl = aws.client("dynamodb").describe_time_to_live(TableName=provisioned.table)

    assert {i["IndexName"] for i in described["GlobalSecondaryIndexes"]} == {
        i["IndexName"] for i in table["GlobalSecondaryIndexes"]
    }
    assert ttl["TimeToLiveDescription"]["AttributeName"] == table["TimeToLiveSpecification"]["AttributeName"]
    assert provisioned.bucket == "maskgate-123456789012-us-east-1"
    aws.client("s3").head_bucket(Bucket=provisioned.bucket)
    assert set(provisioned.queues) == {lid for lid, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    machine = aws.client("stepfunctions").describe_state_machine(
        stateMachineArn=provisioned.state_machine_arn
    )
    assert machine["name"] == "maskgate-segmentation"
    assert "${" not in machine["definition"]


def test_provision_creates_every_http_api_route(stack):
    aws, provisioned = stack
    expected = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for resource in _template_resources().values()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in resource["Properties"].get("Events", {}).values()
        if event["Type"] == "HttpApi"
    }

    routes = aws.client("apigatewayv2").get_routes(ApiId=provisioned.api_id)["Items"]

    assert {tuple(r["RouteKey"].split(" ", 1)) for r in routes} == expected
    assert {(r.method, r.path) for r in provisioned.routes} == expected
    assert {r.function_name for r in provisioned.routes} == {
        provisioned.functions["ApiFunction"].function_name
    }


def test_upload_invokes_on_upload_once_after_the_response(stack, recorder):
    aws, provisioned = stack
    metadata = json.dumps({"prompt": "the cat"}, ensure_ascii=True)

    aws.client("s3").put_object(
        Bucket=provisioned.bucket,
        Key="uploads/my cat é.png",
        Body=b"\x89PNG",
        ContentType="image/png",
        Metadata={"maskgate": metadata},
    )
    invoked_during_put = "OnUploadFunction" in recorder.events
    recorder.put_returned.set()

    assert aws.wait_idle(10)
    assert not invoked_during_put
    [call] = recorder.events["OnUploadFunction"]
    assert call["after_response"] is True
    assert call["metadata"] == {"maskgate": metadata}
    assert call["content_type"] == "image/png"
    assert call["event"]["Records"][0]["s3"]["object"]["key"] == "uploads%2Fmy+cat+%C3%A9.png"


def test_s3_notifications_of_a_request_run_once_after_its_response_is_closed(stack, recorder, tmp_path):
    # given a probe function and a WSGI app that fires the same S3 notification twice, as multipart does
    aws, _ = stack
    (tmp_path / "app.py").write_text(
        "from maskgate_test_recorder import record, put_returned\n"
        "def handler(event, context):\n"
        "    record('probe', put_returned.is_set())\n",
        encoding="utf-8",
    )
    probe = FunctionSpec(logical_id="Probe", function_name="probe", handler="app.handler", code_dir=tmp_path)
    aws.register([probe])
    event = {
        "Records": [
            {"eventSource": "aws:s3", "s3": {"bucket": {"name": "b"}, "object": {"key": "k", "eTag": "e"}}}
        ]
    }

    def app(environ, start_response):
        from moto.s3 import notifications

        for _ in range(2):
            notifications._invoke_awslambda("123456789012", event, probe.arn, "us-east-1")
        start_response("200 OK", [])
        return [b"done"]

    # when the server sends the response, then closes it
    body = aws._defer_s3_notifications(app)({}, lambda *_: None)
    assert list(body) == [b"done"]
    invoked_before_close = "probe" in recorder.events
    recorder.put_returned.set()
    body.close()

    # then the probe ran once, and only after the close
    assert aws.wait_idle(10)
    assert not invoked_before_close
    assert recorder.events["probe"] == [True]


def test_upload_outside_uploads_prefix_invokes_nothing(stack, events):
    aws, provisioned = stack

    aws.client("s3").put_object(Bucket=provisioned.bucket, Key="inputs/x.png", Body=b"x")

    assert aws.wait_idle(10)
    assert "OnUploadFunction" not in events


def test_multipart_upload_invokes_on_upload_once(stack, events):
    aws, provisioned = stack
    s3 = aws.client("s3")
    upload = s3.create_multipart_upload(Bucket=provisioned.bucket, Key="uploads/big.png")
    part = s3.upload_part(
        Bucket=provisioned.bucket,
        Key="uploads/big.png",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"\x89PNG" * 10,
    )

    s3.complete_multipart_upload(
        Bucket=provisioned.bucket,
        Key="uploads/big.png",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )

    assert aws.wait_idle(10)
    assert len(events["OnUploadFunction"]) == 1


def test_failing_upload_handler_is_retried_then_dead_lettered(stack, events):
    aws, provisioned = stack

    aws.client("s3").put_object(Bucket=provisioned.bucket, Key="uploads/fail.png", Body=b"x")

    assert aws.wait_idle(10)
    assert len(events["OnUploadFunction"]) == 3
    messages = (
        aws.client("sqs")
        .receive_message(
            QueueUrl=provisioned.queues["OnUploadDeadLetterQueue"], MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        .get("Messages", [])
    )
    assert [json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"] for m in messages] == [
        "uploads%2Ffail.png"
    ]


def _run(aws: LocalAws, provisioned: Provisioned, job_id: str) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=provisioned.state_machine_arn,
        name=job_id,
        input=json.dumps(
            {
                "job_id": job_id,
                "wait_seconds": 1,
                "deadline_at": 1_900_000_000,
                "attempt": 0,
                "schedule": [1, 1],
            }
        ),
    )["executionArn"]
    finished = _wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING", 20)
    assert finished, f"execution {job_id} still running"
    return sfn.describe_execution(executionArn=arn)


def _states(aws: LocalAws, execution: dict[str, Any]) -> list[str]:
    history = aws.client("stepfunctions").get_execution_history(executionArn=execution["executionArn"])
    return [
        e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e
    ]


def test_state_machine_callback_path_is_submit_then_store(stack, events):
    aws, provisioned = stack

    execution = _run(aws, provisioned, "callback-1")

    assert execution["status"] == "SUCCEEDED"
    assert _states(aws, execution) == ["Submit", "Store"]  # Store also notifies
    assert events["StoreFunction"] == [{"job_id": "callback-1", "prediction_id": "p"}]
    assert events["SubmitFunction"][0]["task_token"]
    assert "NotifyFunction" not in events


def test_state_machine_lost_callback_times_out_into_a_poll_that_resumes_itself(stack, events):
    aws, provisioned = stack

    execution = _run(aws, provisioned, "happy-1")

    assert execution["status"] == "SUCCEEDED"
    assert _states(aws, execution) == ["Submit", "Backoff", "Poll", "Store"]
    [polled] = events["PollFunction"]
    assert (polled["attempt"], polled["polls_allowed"]) == (1, 2)
    assert polled["task_token"] != events["SubmitFunction"][0]["task_token"]
    assert [e["job_id"] for e in events["StoreFunction"]] == ["happy-1"]
    assert "FailFunction" not in events and "NotifyFunction" not in events


def test_state_machine_catches_a_handler_error_by_its_class_name(stack, events):
    aws, provisioned = stack

    execution = _run(aws, provisioned, "upstream-failed-1")

    assert execution["status"] == "SUCCEEDED"
    [failed] = events["FailFunction"]
    assert failed["error"]["Error"] == "UpstreamFailed"
    assert "StoreFunction" not in events
    assert [e["job_id"] for e in events["NotifyFunction"]] == ["upstream-failed-1"]  # Fail -> Notify


def test_state_machine_routes_a_named_error_to_its_own_catch(stack, events):
    aws, provisioned = stack

    execution = _run(aws, provisioned, "rejected-1")

    assert execution["status"] == "SUCCEEDED"
    assert "FailFunction" not in events
    assert [e["job_id"] for e in events["NotifyFunction"]] == ["rejected-1"]


def test_concurrent_invokes_import_the_handler_once(stack, recorder, tmp_path):
    aws, _ = stack
    (tmp_path / "app.py").write_text(
        "from maskgate_test_recorder import record\n"
        "record('imports', 1)\n"
        "def handler(event, context):\n"
        "    return {'n': event['n'], 'request_id': context.aws_request_id}\n",
        encoding="utf-8",
    )
    role = aws.client("iam").list_roles()["Roles"][0]["Arn"]
    aws.client("lambda").create_function(
        FunctionName="concurrent",
        Runtime="python3.12",
        Handler="app.handler",
        Code={"ZipFile": _zip()},
        Role=role,
    )
    aws.register(
        [
            FunctionSpec(
                logical_id="Concurrent", function_name="concurrent", handler="app.handler", code_dir=tmp_path
            )
        ]
    )

    def invoke(n: int) -> dict[str, Any]:
        response = aws.client("lambda").invoke(FunctionName="concurrent", Payload=json.dumps({"n": n}))
        return json.loads(response["Payload"].read())

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(invoke, range(16)))

    assert [r["n"] for r in results] == list(range(16))
    assert len({r["request_id"] for r in results}) == 16
    assert recorder.events["imports"] == [1]


def test_invoke_of_an_unregistered_function_fails_with_a_clear_error_type(stack):
    aws, _ = stack
    aws.client("lambda").create_function(
        FunctionName="orphan",
        Runtime="python3.12",
        Handler="app.handler",
        Code={"ZipFile": _zip()},
        Role=aws.client("iam").list_roles()["Roles"][0]["Arn"],
    )

    response = aws.client("lambda").invoke(FunctionName="orphan", Payload=b"{}")

    assert response["FunctionError"] == "Handled"
    assert json.loads(response["Payload"].read())["errorType"] == "LocalFunctionNotRegistered"


def _sent_headers(aws: LocalAws, call) -> dict[str, str]:
    """The headers of the one request `call` makes, as moto receives them."""
    seen: list[dict[str, str]] = []

    def middleware(app):
        def observed(environ, start_response):
            seen.append(
                {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
            )
            return app(environ, start_response)

        return observed

    aws.observe_requests(middleware)
    try:
        call()
    finally:
        aws.observe_requests(None)
    assert len(seen) == 1
    return seen[0]


def test_requests_answered_here_carry_the_scope_but_no_computed_signature(stack):
    aws, _ = stack
    table = aws.client("dynamodb").list_tables()["TableNames"][0]

    headers = _sent_headers(aws, lambda: aws.client("dynamodb").describe_table(TableName=table))

    credential, _, signature = headers["authorization"].split(", ")
    assert credential.startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert credential.endswith("/us-east-1/dynamodb/aws4_request")
    assert signature == "Signature=" + "0" * 64
    assert headers["x-amz-date"]  # what moto and signing both set


def test_s3_requests_and_presigned_urls_are_signed_as_botocore_signs_them(stack):
    aws, _ = stack
    s3 = aws.client("s3")
    bucket = s3.list_buckets()["Buckets"][0]["Name"]

    headers = _sent_headers(aws, lambda: s3.list_objects_v2(Bucket=bucket, MaxKeys=1))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60)

    assert not headers["authorization"].endswith("0" * 64)
    assert headers["x-amz-content-sha256"]
    assert "Signature=" in url and "0" * 64 not in url


def test_a_request_for_another_address_is_signed_as_botocore_signs_it(stack):
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    elsewhere = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",  # nothing listens: the request is signed, then refused
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    signed: list[str] = []
    elsewhere.meta.events.register(
        "before-send", lambda request, **_: signed.append(request.headers["Authorization"])
    )

    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        elsewhere.list_tables()

    assert signed and not signed[0].endswith(b"0" * 64)


def _recorded_environs(aws: LocalAws, calls) -> list[dict[str, Any]]:
    """The WSGI environ of each request `calls` make, as moto receives them (body kept as bytes)."""
    seen: list[dict[str, Any]] = []

    def middleware(app):
        def observed(environ, start_response):
            body = environ["wsgi.input"].read()
            environ["wsgi.input"] = io.BytesIO(body)
            seen.append({**environ, "wsgi.input": body})
            return app(environ, start_response)

        return observed

    aws.observe_requests(middleware)
    try:
        for call in calls:
            with contextlib.suppress(Exception):  # an error answer is as good a request to replay
                call()
    finally:
        aws.observe_requests(None)
    return seen


_PER_REQUEST_HEADERS = {"x-amzn-requestid", "x-amz-request-id", "x-amz-id-2", "date", "x-amzn-trace-id"}


def _answer(app, recorded: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """`app`'s answer to a replay of `recorded`, with what differs per request masked out."""
    answer: dict[str, Any] = {}

    def start_response(status, headers, *_):
        answer.update(status=status, headers=headers)

    body = app({**recorded, "wsgi.input": io.BytesIO(recorded["wsgi.input"])}, start_response)
    try:
        content = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    masked = [(k, v) for k, v in answer["headers"] if k.lower() not in _PER_REQUEST_HEADERS]
    for name, value in answer["headers"]:
        if name.lower() in ("x-amzn-requestid", "x-amz-request-id"):
            content = content.replace(value.encode(), b"<request id>")
    return answer["status"], sorted(masked), content


def _count_flask(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every request a Flask app answers from now on (in this test), in order."""
    import flask

    through_flask: list[str] = []
    wsgi_app = flask.Flask.wsgi_app

    def counted(app, environ, start_response):
        through_flask.append(environ["PATH_INFO"])
        return wsgi_app(app, environ, start_response)

    monkeypatch.setattr(flask.Flask, "wsgi_app", counted)
    return through_flask


def test_requests_answered_here_get_the_answers_moto_s_flask_app_gives(stack, monkeypatch):
    from maskgate_local.stack.moto_wsgi import FlasklessApp, moto_app

    aws, provisioned = stack
    dynamodb, s3, sfn, lam = (aws.client(s) for s in ("dynamodb", "s3", "stepfunctions", "lambda"))
    table = dynamodb.list_tables()["TableNames"][0]
    bucket = s3.list_buckets()["Buckets"][0]["Name"]
    s3.put_object(Bucket=bucket, Key="replay/object.json", Body=b'{"a": 1}', ContentType="application/json")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    function = next(iter(provisioned.functions.values())).function_name
    calls = [
        lambda: dynamodb.describe_table(TableName=table),
        lambda: dynamodb.get_item(TableName=table, Key={"pk": {"S": "none"}, "sk": {"S": "none"}}),
        lambda: dynamodb.get_item(TableName="no-such-table", Key={"pk": {"S": "x"}}),
        lambda: dynamodb.query(
            TableName=table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "none"}},
        ),
        lambda: s3.get_object(Bucket=bucket, Key="replay/object.json"),
        lambda: s3.head_object(Bucket=bucket, Key="replay/object.json"),
        lambda: s3.head_object(Bucket=bucket, Key="replay/missing"),
        lambda: s3.get_object(Bucket=bucket, Key="replay/missing"),
        lambda: s3.list_objects_v2(Bucket=bucket, Prefix="replay/"),
        lambda: sfn.describe_state_machine(stateMachineArn=machine),
        lambda: sfn.describe_execution(
            executionArn=f"{machine.replace(':stateMachine:', ':execution:')}:none"
        ),
        lambda: lam.get_function_configuration(FunctionName=function),
        # writes that answer the same when sent again
        lambda: dynamodb.put_item(TableName=table, Item={"pk": {"S": "REPLAY#1"}, "sk": {"S": "x"}}),
        lambda: dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": "REPLAY#1"}, "sk": {"S": "x"}},
            UpdateExpression="SET n = :n",
            ExpressionAttributeValues={":n": {"N": "1"}},
            ReturnValues="ALL_NEW",
        ),
        lambda: dynamodb.update_item(  # a condition that fails: 400 ConditionalCheckFailed
            TableName=table,
            Key={"pk": {"S": "REPLAY#1"}, "sk": {"S": "x"}},
            UpdateExpression="SET n = :n",
            ConditionExpression="attribute_not_exists(pk)",
            ExpressionAttributeValues={":n": {"N": "2"}},
        ),
        lambda: dynamodb.transact_write_items(  # a transaction cancelled by its condition
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "REPLAY#1"}, "sk": {"S": "x"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            ]
        ),
        lambda: s3.put_object(Bucket=bucket, Key="replay/object.json", Body=b'{"a": 1}'),
    ]
    recorded = _recorded_environs(aws, calls)
    assert len(recorded) == len(calls)
    lambda_request = next(e for e in recorded if e["PATH_INFO"].startswith("/2015-03-31/functions/"))
    not_routed = {**lambda_request, "PATH_INFO": "/2015-03-31/no/such/route"}  # no Lambda route matches
    from_a_browser = {**recorded[0], "HTTP_ORIGIN": "http://localhost:3000"}  # flask-cors answers by origin
    dispatcher = moto_app()
    flaskless = FlasklessApp(dispatcher)

    through_flask = _count_flask(monkeypatch)
    for environ in [*recorded, not_routed, from_a_browser]:
        before = len(through_flask)
        answered = _answer(flaskless, environ)
        # the recorded requests are answered without Flask, the two others with it
        assert len(through_flask) - before == (1 if environ is not_routed or environ is from_a_browser else 0)
        assert answered == _answer(dispatcher, environ), environ["PATH_INFO"]
    statuses = {_answer(flaskless, environ)[0][:3] for environ in recorded}
    assert {"200", "400", "404"} <= statuses  # answers and errors both compared
    assert _answer(flaskless, not_routed)[0].startswith("404")
    assert ("Access-Control-Allow-Origin", "http://localhost:3000") in _answer(flaskless, from_a_browser)[1]


def test_an_http_exception_a_handler_raises_is_answered_as_flask_answers_it(stack, monkeypatch):
    """moto's RESTError is a werkzeug HTTPException; one raised outside moto's own catch (here from its
    request set-up) is turned into its own response by Flask, and so by FlasklessApp."""
    from moto.core.exceptions import JsonRESTError
    from moto.core.responses import BaseResponse

    from maskgate_local.stack.moto_wsgi import FlasklessApp, moto_app

    aws, _ = stack
    dynamodb = aws.client("dynamodb")
    [recorded] = _recorded_environs(aws, [lambda: dynamodb.list_tables()])
    setup_class = BaseResponse.setup_class

    def refusing(self, request, *args, **kwargs):
        if request.headers.get("X-Amz-Target", "").endswith(".ListTables"):
            raise JsonRESTError("ThrottlingException", "refused in set-up")
        return setup_class(self, request, *args, **kwargs)

    monkeypatch.setattr(BaseResponse, "setup_class", refusing)
    dispatcher = moto_app()

    answered = _answer(FlasklessApp(dispatcher), recorded)

    assert answered == _answer(dispatcher, recorded)
    assert answered[0].startswith("400") and b"ThrottlingException" in answered[2]


def test_requests_answered_here_skip_flask_and_requests_over_http_do_not(stack, monkeypatch):
    import urllib.request

    aws, _ = stack
    through_flask = _count_flask(monkeypatch)
    aws.client("dynamodb").list_tables()
    assert through_flask == []

    over_http = urllib.request.Request(  # a client in another process: the server on the stack's port
        f"{aws.endpoint_url}/",
        data=b"{}",
        headers={
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261207/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    with urllib.request.urlopen(over_http, timeout=10) as response:
        assert "TableNames" in json.loads(response.read())
    assert through_flask == ["/"]


def test_a_translation_is_made_once_per_process_and_handed_out_as_copies(tmp_path: Path) -> None:
    from maskgate_local.stack import provision as provisioning

    first, paths, values = provisioning._translated(TEMPLATE, PARAMETERS, "us-east-1")
    first["Resources"].clear()  # a caller's change stays its own
    paths.clear()
    values.clear()
    again, paths_again, values_again = provisioning._translated(TEMPLATE, PARAMETERS, "us-east-1")
    assert again["Resources"] and paths_again and values_again["PollInitialSeconds"] == "1"
    other = provisioning._translated(TEMPLATE, {**PARAMETERS, "PollInitialSeconds": "3"}, "us-east-1")
    assert other[2]["PollInitialSeconds"] == "3"
    # the same file changed in place is translated anew: the key is its text
    copy = tmp_path / "template.yaml"
    copy.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    provisioning._translated(copy, PARAMETERS, "us-east-1")
    misses = provisioning._translation.cache_info().misses
    provisioning._translated(copy, PARAMETERS, "us-east-1")
    assert provisioning._translation.cache_info().misses == misses
    copy.write_text(TEMPLATE.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert provisioning._translated(copy, PARAMETERS, "us-east-1")[0]["Resources"].keys() == (
        again["Resources"].keys()
    )
    assert provisioning._translation.cache_info().misses == misses + 1


def test_sessions_share_one_botocore_loader_only_while_moto_is_imported() -> None:
    import botocore.session

    from maskgate_local.stack.aws import _one_botocore_loader

    create_loader = botocore.session.create_loader
    with _one_botocore_loader():
        inside = [botocore.session.Session().get_component("data_loader") for _ in range(2)]
    assert inside[0] is inside[1]
    assert botocore.session.create_loader is create_loader
    after = [botocore.session.Session().get_component("data_loader") for _ in range(2)]
    assert after[0] is not after[1] and after[0] is not inside[0]


def test_a_server_asked_to_stop_stops_and_stop_then_returns_at_once() -> None:
    from maskgate_local.stack.servers import serve_in_thread

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        return None

    servers = [serve_in_thread(app) for _ in range(2)]
    for server in servers:
        server.ask_to_stop()
    for server in servers:
        server.stop()
        assert not server.running
