"""The local stack's changes to moto keep moto's answers: DynamoDB items written directly equal what
moto's own serializer writes, and UpdateItem with the validators' class checks kept per pair of classes
leaves the same item (or fails with the same error) as moto alone."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from maskgate_local.stack import moto_speed


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """moto_speed's changes inside, every one undone after."""
    restore: list[Callable[[], None]] = []

    def patch(owner: Any, name: str, replacement: Any) -> None:
        original = owner.__dict__[name]
        setattr(owner, name, replacement)
        restore.append(lambda: setattr(owner, name, original))

    try:
        moto_speed.install(patch)
        yield
    finally:
        while restore:
            restore.pop()()


# --- attribute values ------------------------------------------------------------------------------------

_text = st.text(max_size=8)
_blob = st.binary(max_size=8)
_scalar = st.one_of(
    st.builds(lambda v: {"S": v}, _text),
    st.builds(lambda v: {"N": v}, st.integers().map(str) | st.decimals(allow_nan=False).map(str)),
    st.builds(lambda v: {"B": v}, _blob),
    st.builds(lambda v: {"SS": v}, st.lists(_text, max_size=3)),
    st.builds(lambda v: {"NS": v}, st.lists(st.integers().map(str), max_size=3)),
    st.builds(lambda v: {"BS": v}, st.lists(_blob, max_size=3)),
    st.just({"NULL": True}),
    st.builds(lambda v: {"BOOL": v}, st.booleans()),
)
_odd = st.one_of(  # not what moto's handler hands the serializer, but whatever it does, both must agree
    st.builds(lambda v: {"S": v}, st.integers() | st.none()),
    st.dictionaries(st.sampled_from(["S", "N", "NULL", "BOOL"]), _text, max_size=3),
    st.builds(lambda v: {"s": v}, _text),
    st.builds(lambda v: {"S": v, "extra": 1}, _text),
    st.just({}),
)
_attribute_values = st.recursive(
    _scalar | _odd,
    lambda inner: st.one_of(
        st.builds(lambda v: {"M": v}, st.dictionaries(_text, inner | st.none(), max_size=3)),  # "" too
        st.builds(lambda v: {"L": v}, st.lists(inner | st.none(), max_size=3)),
    ),
    max_leaves=8,
)
_items = st.dictionaries(st.text(min_size=1, max_size=6), _attribute_values, max_size=4)


def _serialized(operation: str, result: dict[str, Any]) -> Any:
    from moto.core.responses import ActionContext, ActionResult
    from moto.core.serialize import get_serializer_class
    from moto.core.utils import get_service_model
    from moto.dynamodb.responses import DynamoHandler

    service = get_service_model("dynamodb")
    context = ActionContext(
        service, service.operation_model(operation), get_serializer_class("dynamodb", "json"), DynamoHandler()
    )
    _, _, body = ActionResult(result).execute_result(context)
    return json.loads(body)


@settings(max_examples=150, deadline=None)
@given(item=_items, items=st.lists(_items, max_size=3))
def test_items_written_directly_are_what_moto_writes(item, items):
    results = [("GetItem", {"Item": item}), ("Query", {"Items": items, "Count": len(items)})]
    by_moto = [_serialized(operation, result) for operation, result in results]
    with installed():
        assert [_serialized(operation, result) for operation, result in results] == by_moto


def test_a_binary_value_is_base64_as_moto_writes_it():
    with installed():
        written = _serialized("GetItem", {"Item": {"b": {"B": b"\x00\xff"}, "s": {"BS": [b"a"]}}})
    assert written == {"Item": {"b": {"B": "AP8="}, "s": {"BS": ["YQ=="]}}}


# --- UpdateItem -------------------------------------------------------------------------------------------

_START = {
    "pk": {"S": "JOB#1"},
    "status": {"S": "queued"},
    "count": {"N": "1"},
    "tags": {"SS": ["a", "b"]},
    "list": {"L": [{"S": "x"}, {"N": "2"}]},
    "map": {"M": {"inner": {"S": "y"}, "deeper": {"M": {"n": {"N": "3"}}}}},
}
UPDATES: list[dict[str, Any]] = [
    {"UpdateExpression": "SET #s = :s, updated_at = :u", "Names": {"#s": "status"}},
    {"UpdateExpression": "SET #c = #c + :one REMOVE list[0]", "Names": {"#c": "count"}},
    {"UpdateExpression": "ADD tags :more DELETE tags :less"},
    {"UpdateExpression": "SET list = list_append(list, :l), map.inner = if_not_exists(map.gone, :s)"},
    {"UpdateExpression": "SET map.deeper.n = map.deeper.n - :one, newer = :u"},
    {"UpdateExpression": "SET #s = :s", "Names": {"#s": "status"}, "Condition": "#s IN (:q, :u)"},
    {"UpdateExpression": "SET #s = :s", "Names": {"#s": "status"}, "Condition": "#s = :u"},  # fails
    {"UpdateExpression": "SET a = :s SET b = :s"},  # two SET clauses
    {"UpdateExpression": "SET map = :s, map.inner = :s"},  # overlapping paths
    {"UpdateExpression": "SET pk = :s"},  # the key
    {"UpdateExpression": "SET gone.deeper = :s"},  # no such path
    {"UpdateExpression": "SET #c = #c + :s", "Names": {"#c": "count"}},  # type mismatch
    {"UpdateExpression": "SET empty = :empty"},
    {"UpdateExpression": "SET #k = :s", "Names": {"#k": "other"}},
    {"UpdateExpression": "SET #k = :s", "Names": {"#k": "pk"}},  # the same expression, now on the key
    {"UpdateExpression": "SET #k = :s, #j = :u", "Names": {"#k": "a", "#j": "b"}},
    {"UpdateExpression": "SET #k = :s, #j = :u", "Names": {"#k": "a", "#j": "a"}},  # now one path twice
]
VALUES = {
    ":s": {"S": "done"},
    ":u": {"S": "2026-12-07"},
    ":one": {"N": "1"},
    ":more": {"SS": ["c"]},
    ":less": {"SS": ["a"]},
    ":l": {"L": [{"BOOL": True}]},
    ":q": {"S": "queued"},
    ":empty": {"S": ""},
}


@contextlib.contextmanager
def table_t() -> Iterator[Any]:
    """A DynamoDB client on moto (in this process) with an empty table ``t`` keyed by ``pk``."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _update_outcomes() -> list[Any]:
    """Each update on a fresh copy of the item: the item after, or the error's code and message."""
    outcomes: list[Any] = []
    with table_t() as client:
        for update in UPDATES * 2:  # each twice: what is kept per expression is used the second time
            client.put_item(TableName="t", Item=_START)
            expression = update["UpdateExpression"] + " " + update.get("Condition", "")
            request: dict[str, Any] = {
                "TableName": "t",
                "Key": {"pk": _START["pk"]},
                "UpdateExpression": update["UpdateExpression"],
                "ExpressionAttributeValues": {k: v for k, v in VALUES.items() if k in expression},
                "ReturnValues": "ALL_NEW",
            }
            if "Names" in update:
                request["ExpressionAttributeNames"] = update["Names"]
            if "Condition" in update:
                request["ConditionExpression"] = update["Condition"]
            try:
                outcomes.append(client.update_item(**request)["Attributes"])
            except client.exceptions.ClientError as exc:
                outcomes.append((exc.response["Error"]["Code"], exc.response["Error"]["Message"]))
    return outcomes


def test_update_item_answers_as_moto_alone():
    by_moto = _update_outcomes()
    assert sum(isinstance(outcome, tuple) for outcome in by_moto) >= 6  # the failures are exercised too
    with installed():
        assert _update_outcomes() == by_moto


def test_response_classes_list_their_methods_once():
    from moto.core import responses
    from moto.dynamodb.responses import DynamoHandler

    listed = responses.method_names_from_class(DynamoHandler)
    with installed():
        first = responses.method_names_from_class(DynamoHandler)
        assert first == listed
        assert responses.method_names_from_class(DynamoHandler) is first
    assert "update_item" in listed


# --- TransactWriteItems ----------------------------------------------------------------------------------

_ITEMS = {
    "a": {"pk": {"S": "a"}, "n": {"N": "1"}, "tags": {"SS": ["x"]}, "m": {"M": {"k": {"L": [{"S": "v"}]}}}},
    "b": {"pk": {"S": "b"}, "n": {"N": "5"}},
}


def _put(pk: str, n: int, condition: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": "t", "Item": {"pk": {"S": pk}, "n": {"N": str(n)}}}
    if condition:
        op["ConditionExpression"] = condition
    return {"Put": op}


def _update(pk: str, expression: str, condition: str | None = None, table: str = "t") -> dict[str, Any]:
    op: dict[str, Any] = {
        "TableName": table,
        "Key": {"pk": {"S": pk}},
        "UpdateExpression": expression,
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":tag": {"SS": ["y"]}, ":cap": {"N": "3"}},
    }
    if condition:
        op["ConditionExpression"] = condition
    return {"Update": op}


_OPERATIONS = [
    _put("c", 1),
    _put("a", 9),
    _put("new", 2, "attribute_not_exists(pk)"),
    _put("a", 2, "attribute_not_exists(pk)"),  # fails: a exists
    _update("a", "SET n = n + :one ADD tags :tag"),
    _update("b", "SET n = n + :one", "n < :cap"),  # fails: b's n is 5
    _update("fresh", "SET n = :one"),
    _update("a", "SET n = n + :tag"),  # fails: a number plus a set
    _update("a", "SET n = :one", table="missing"),  # no such table
    {"Delete": {"TableName": "t", "Key": {"pk": {"S": "b"}}}},
    {
        "Delete": {
            "TableName": "t",
            "Key": {"pk": {"S": "a"}},
            "ConditionExpression": "n > :cap",
            "ExpressionAttributeValues": {":cap": {"N": "3"}},
        }
    },  # fails: a's n is 1
    {
        "ConditionCheck": {
            "TableName": "t",
            "Key": {"pk": {"S": "b"}},
            "ConditionExpression": "attribute_exists(pk)",
        }
    },
    {"Delete": {"TableName": "t", "Key": {"nokey": {"S": "b"}}}},  # no key attribute
]


def _transaction_outcomes(transactions: list[list[dict[str, Any]]]) -> list[Any]:
    """Each transaction on the same table in turn: its error (code, reasons), then the table's items."""
    outcomes: list[Any] = []
    with table_t() as client:
        for item in _ITEMS.values():
            client.put_item(TableName="t", Item=item)
        for transaction in transactions:
            try:
                client.transact_write_items(TransactItems=transaction)
                outcomes.append("ok")
            except client.exceptions.ClientError as exc:
                error = exc.response["Error"]
                reasons = exc.response.get("CancellationReasons")
                outcomes.append((error["Code"], error["Message"], reasons))
            outcomes.append(sorted(client.scan(TableName="t")["Items"], key=lambda i: i["pk"]["S"]))
    return outcomes


_transactions = st.lists(
    st.lists(st.sampled_from(_OPERATIONS), min_size=1, max_size=4), min_size=1, max_size=5
)


@settings(max_examples=20, deadline=None)  # each example starts moto twice (~0.6 s)
@given(transactions=_transactions)
def test_transactions_keep_moto_answers_and_roll_back_as_moto_does(transactions):
    by_moto = _transaction_outcomes(transactions)
    with installed():
        assert _transaction_outcomes(transactions) == by_moto


def test_a_failed_transaction_puts_back_what_its_earlier_operations_wrote():
    transaction = [
        _put("c", 1),
        _update("a", "SET n = n + :one ADD tags :tag"),
        _update("b", "SET n = :one", "n < :cap"),
    ]
    by_moto = _transaction_outcomes([transaction])
    assert by_moto[0][0] == "TransactionCanceledException"
    assert by_moto[1] == sorted(_ITEMS.values(), key=lambda i: i["pk"]["S"])  # c taken back, a as it was
    with installed():
        assert _transaction_outcomes([transaction]) == by_moto


def test_a_transaction_copies_no_table():
    from moto.dynamodb.models import Table

    copied: list[Any] = []
    real = Table.__reduce_ex__

    def watched(self: Any, protocol: Any) -> Any:
        copied.append(self.name)
        return real(self, protocol)

    with installed(), contextlib.ExitStack() as stack:
        stack.callback(setattr, Table, "__reduce_ex__", real)
        Table.__reduce_ex__ = watched  # type: ignore[method-assign]
        outcomes = _transaction_outcomes([[_put("c", 1), _put("a", 2, "attribute_not_exists(pk)")]])
    assert outcomes[0][0] == "TransactionCanceledException"
    assert copied == []


# --- sizes and request ids ----------------------------------------------------------------------------


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # both must fail alike on what moto cannot size
        return type(exc)


@settings(max_examples=300, deadline=None)
@given(value=_attribute_values)
def test_an_items_size_is_what_moto_sums(value):
    from moto.dynamodb.models.dynamo_type import DynamoType

    typed = _outcome(lambda: DynamoType(value))
    if isinstance(typed, type):
        return  # moto cannot even read it: nothing to size
    by_moto = _outcome(typed.size)
    with installed():
        assert _outcome(typed.size) == by_moto
        assert _outcome(lambda: DynamoType(value).size()) == by_moto


def test_the_item_size_limit_still_holds():
    with table_t() as client, installed():
        client.put_item(TableName="t", Item={"pk": {"S": "a"}, "m": {"M": {"x": {"S": "y" * 300_000}}}})
        too_large = client.exceptions.ClientError
        try:
            client.update_item(
                TableName="t",
                Key={"pk": {"S": "a"}},
                UpdateExpression="SET n = :n",
                ExpressionAttributeValues={":n": {"L": [{"S": "z" * 200_000}]}},
            )
        except too_large as exc:
            assert "Item size to update has exceeded the maximum allowed size" in str(exc)
        else:
            raise AssertionError("an item over 400 KB was written")


def test_request_ids_are_52_of_motos_characters_and_set_the_header():
    import string

    headers: dict[str, Any] = {}
    first = moto_speed.request_id(headers)
    assert headers == {"x-amzn-requestid": first} and len(first) == 52
    assert set(first) <= set(string.ascii_letters + string.digits)
    assert moto_speed.request_id() != first
