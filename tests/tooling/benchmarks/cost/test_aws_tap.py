"""benchmarks.cost.aws_tap: the WSGI tap classifies and sizes requests; a plain function is the fake moto."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from benchmarks.cost.aws_tap import BENCH_AGENT, AwsTap, TableSpec
from benchmarks.cost.dynamo_units import IndexSpec

SPEC = TableSpec(keys=("pk",), indexes=(IndexSpec("tenant-created", ("tenant", "created_at"), "ALL"),))
CONDITION_FAILED = b'{"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}'


def _signed(service: str) -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential=testing/20261125/us-east-1/{service}/aws4_request, SignedHeaders=host"
    )


class FakeTable:
    """Items by pk; the fake app writes ``Item`` of a PutItem unless told to fail its condition."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.fail_condition = False

    def read(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        return self.items.get(key["pk"]["S"])

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read()
        if self.fail_condition:
            start_response("400 Bad Request", [])
            return [CONDITION_FAILED]
        request = json.loads(body)
        if "Item" in request:
            self.items[request["Item"]["pk"]["S"]] = request["Item"]
        start_response("200 OK", [])
        return [b"{}"]


def _dynamodb(operation: str, request: dict[str, Any], agent: str = "Boto3/1.40") -> dict[str, Any]:
    body = json.dumps(request).encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "HTTP_X_AMZ_TARGET": f"DynamoDB_20120810.{operation}",
        "HTTP_AUTHORIZATION": _signed("dynamodb"),
        "HTTP_USER_AGENT": agent,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }


def _s3(method: str, path: str, *, presigned: bool = False, length: int = 0) -> dict[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(b"")}
    credential = "testing/20261125/us-east-1/s3/aws4_request"
    if presigned:
        environ["QUERY_STRING"] = f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}"
    else:
        environ["HTTP_AUTHORIZATION"] = _signed("s3")
    environ["CONTENT_LENGTH"] = str(length)
    return environ


def _serve(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> bytes:
    return b"".join(app(environ, lambda status, headers, *exc: None))


def _job(padding: int) -> dict[str, Any]:
    return {"pk": {"S": "JOB#1"}, "tenant": {"S": "t"}, "created_at": {"S": "t0"}, "d": {"S": "x" * padding}}


def test_a_put_of_a_new_item_costs_its_table_and_index_writes_and_is_remembered_as_created() -> None:
    # given
    table = FakeTable()
    tap = AwsTap(tables={"jobs": SPEC}, read_item=table.read)
    tap.counting = True
    # when: an item of 26 + 1 + 1,100 bytes is put
    _serve(tap(table.app), _dynamodb("PutItem", {"TableName": "jobs", "Item": _job(1100)}))
    # then
    assert tap.usage.dynamodb_wru == {"PutItem": 2, "PutItem (indexes)": 2}
    assert tap.usage.created_items == [("jobs", {"pk": {"S": "JOB#1"}})]
    assert tap.usage.calls == {"dynamodb.PutItem": 1}


def test_a_failed_conditional_write_is_billed_for_the_existing_item() -> None:
    table = FakeTable()
    table.items["JOB#1"] = _job(1500)
    table.fail_condition = True
    tap = AwsTap(tables={"jobs": SPEC}, read_item=table.read)
    tap.counting = True
    _serve(tap(table.app), _dynamodb("UpdateItem", {"TableName": "jobs", "Key": {"pk": {"S": "JOB#1"}}}))
    assert tap.usage.dynamodb_wru["UpdateItem"] == 2 and tap.usage.dynamodb_wru["UpdateItem (indexes)"] == 0
    assert tap.usage.dynamodb_failed_conditions == {"UpdateItem": 1}


class FakeTransactions(FakeTable):
    """A fake app applying a TransactWriteItems' Puts, or canceling it."""

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = json.loads(environ["wsgi.input"].read())
        if self.fail_condition:
            start_response("400 Bad Request", [])
            return [b'{"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException"}']
        for entry in request["TransactItems"]:
            if "Put" in entry:
                self.items[entry["Put"]["Item"]["pk"]["S"]] = entry["Put"]["Item"]
        start_response("200 OK", [])
        return [b"{}"]


def test_a_transaction_bills_each_item_twice_and_its_index_writes_once() -> None:
    # given
    table = FakeTransactions()
    tap = AwsTap(tables={"jobs": SPEC}, read_item=table.read)
    tap.counting = True
    usage = {"pk": {"S": "USAGE#t#2026-12"}, "committed": {"N": "5000"}}
    # when: a job of 1,127 bytes is put with a small counter item, in one transaction
    request = {
        "TransactItems": [
            {"Put": {"TableName": "jobs", "Item": _job(1100)}},
            {"Put": {"TableName": "jobs", "Item": usage}},
        ]
    }
    _serve(tap(table.app), _dynamodb("TransactWriteItems", request))
    # then: 2 x 2 units for the job, 2 x 1 for the counter; the job enters the index once (2 KB: 2 units)
    assert tap.usage.dynamodb_wru == {"PutItem (transaction)": 6, "PutItem (transaction, indexes)": 2}
    assert tap.usage.calls == {"dynamodb.TransactWriteItems": 1}
    assert len(tap.usage.created_items) == 2


def test_a_canceled_transaction_bills_each_items_check() -> None:
    table = FakeTransactions()
    table.items["JOB#1"] = _job(1500)
    table.fail_condition = True
    tap = AwsTap(tables={"jobs": SPEC}, read_item=table.read)
    tap.counting = True
    request = {"TransactItems": [{"Put": {"TableName": "jobs", "Item": _job(1)}}]}
    _serve(tap(table.app), _dynamodb("TransactWriteItems", request))
    assert tap.usage.dynamodb_wru == {"PutItem (transaction)": 4, "PutItem (transaction, indexes)": 0}
    assert tap.usage.dynamodb_failed_conditions == {"TransactWriteItems": 1}


def test_a_consistent_get_of_a_missing_item_costs_one_read_unit() -> None:
    table = FakeTable()
    tap = AwsTap(tables={"jobs": SPEC}, read_item=table.read)
    tap.counting = True
    request = {"TableName": "jobs", "Key": {"pk": {"S": "JOB#2"}}, "ConsistentRead": True}
    _serve(tap(table.app), _dynamodb("GetItem", request))
    assert tap.usage.dynamodb_rru == {"GetItem": 1.0}


def test_requests_of_the_meter_itself_and_outside_a_window_are_not_counted() -> None:
    table = FakeTable()
    tap = AwsTap(tables={"jobs": SPEC}, read_item=table.read)
    _serve(tap(table.app), _dynamodb("PutItem", {"TableName": "jobs", "Item": _job(1)}))
    tap.counting = True
    _serve(tap(table.app), _dynamodb("PutItem", {"TableName": "jobs", "Item": _job(1)}, agent=BENCH_AGENT))
    assert tap.usage.calls == {}


def test_s3_requests_are_counted_by_price_class_with_stored_and_presigned_bytes() -> None:
    def moto(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [b"p" * 100] if environ["REQUEST_METHOD"] == "GET" else [b""]

    tap = AwsTap(tables={}, read_item=lambda table, key: None)
    tap.counting = True
    _serve(tap(moto), _s3("PUT", "/bucket/inputs/j/image.png", length=1234))
    _serve(tap(moto), _s3("GET", "/bucket/inputs/j/image.png", presigned=True))
    _serve(tap(moto), _s3("HEAD", "/bucket/inputs/j/image.png"))
    _serve(tap(moto), _s3("GET", "/bucket"))
    _serve(tap(moto), _s3("DELETE", "/bucket/inputs/j/image.png"))
    usage = tap.usage
    assert usage.s3_tier1 == {"PutObject": 1, "ListObjects": 1}
    assert usage.s3_tier2 == {"GetObject": 1, "HeadObject": 1}
    assert usage.s3_stored == [("inputs/j/image.png", 1234)]
    assert usage.s3_presigned_get_bytes == 100


def test_sqs_messages_are_counted_in_64_kb_chunks_and_executions_by_state_machine() -> None:
    def moto(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"{}"]

    def call(service: str, target: str, body: bytes) -> dict[str, Any]:
        return {
            "REQUEST_METHOD": "POST",
            "HTTP_X_AMZ_TARGET": target,
            "HTTP_AUTHORIZATION": _signed(service),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }

    tap = AwsTap(tables={}, read_item=lambda table, key: None)
    tap.counting = True
    _serve(tap(moto), call("sqs", "AmazonSQS.SendMessage", b"m" * (64 * 1024 + 1)))
    start = json.dumps({"stateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:maskgate-segmentation"})
    _serve(tap(moto), call("states", "AWSStepFunctions.StartExecution", start.encode()))
    assert tap.usage.sqs_requests == 2
    assert tap.usage.state_machine_starts == {"maskgate-segmentation": 1}
