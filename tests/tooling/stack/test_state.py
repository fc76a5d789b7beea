"""The local stack's saved state (``maskgate dev --state-dir``): tables and objects out and back in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from maskgate_local.stack import state
from maskgate_local.stack.state import StateDirError

REGION = "us-east-1"
TABLE = "maskgate-jobs"
BUCKET = "maskgate-bucket"


def _clients() -> tuple[Any, Any]:
    kwargs = {"region_name": REGION, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client("dynamodb", **kwargs), boto3.client("s3", **kwargs)


def _provision(dynamodb: Any, s3: Any) -> None:
    """What the template would create again at a start: the table and the bucket, empty."""
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    s3.create_bucket(Bucket=BUCKET)


@contextmanager
def _stack() -> Iterator[tuple[Any, Any]]:
    """A moto of its own with the table and bucket provisioned (a stack's start)."""
    with mock_aws():
        dynamodb, s3 = _clients()
        _provision(dynamodb, s3)
        yield dynamodb, s3


def _restarted(directory: Path) -> tuple[state.Restored, Any, Any]:
    """A second, empty moto (a restarted stack) with the snapshot loaded into it."""
    with _stack() as (dynamodb, s3):
        restored = state.load(directory, dynamodb=dynamodb, s3=s3)
        items = dynamodb.scan(TableName=TABLE)["Items"]
        objects = {
            entry["Key"]: s3.get_object(Bucket=BUCKET, Key=entry["Key"])
            for entry in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        }
        bodies = {
            key: (got["Body"].read(), got["Metadata"], got["ContentType"]) for key, got in objects.items()
        }
        return restored, items, bodies


def test_items_objects_and_the_api_key_survive_a_restart(tmp_path: Path) -> None:
    job = {
        "pk": {"S": "JOB#seg_1"},
        "status": {"S": "succeeded"},
        "attempts": {"N": "2"},
        "digest": {"B": b"\x00\xffbinary"},
        "tags": {"SS": ["a", "b"]},
        "blobs": {"BS": [b"\x01", b"\x02"]},
        "result": {"M": {"masks": {"L": [{"S": "m0"}, {"B": b"\x03"}, {"NULL": True}, {"BOOL": False}]}}},
    }
    with _stack() as (dynamodb, s3):
        dynamodb.put_item(TableName=TABLE, Item=job)
        s3.put_object(Bucket=BUCKET, Key="masks/seg_1/0.png", Body=b"\x89PNG", ContentType="image/png")
        s3.put_object(
            Bucket=BUCKET, Key="uploads/a b.png", Body=b"\x89PNG", Metadata={"maskgate": '{"x": 1}'}
        )
        state.save(tmp_path, dynamodb=dynamodb, s3=s3, api_key="mg_live_key")
    restored, items, bodies = _restarted(tmp_path)

    assert restored == state.Restored(api_key="mg_live_key", items=1, objects=2)
    assert items == [job]
    assert bodies["masks/seg_1/0.png"] == (b"\x89PNG", {}, "image/png")
    assert bodies["uploads/a b.png"][:2] == (b"\x89PNG", {"maskgate": '{"x": 1}'})
    assert len(list((tmp_path / state.OBJECTS).iterdir())) == 1  # one body, stored once by its digest


def test_a_later_save_replaces_the_snapshot_and_drops_bodies_no_longer_listed(tmp_path: Path) -> None:
    with _stack() as (dynamodb, s3):
        s3.put_object(Bucket=BUCKET, Key="old", Body=b"old body")
        state.save(tmp_path, dynamodb=dynamodb, s3=s3, api_key="k1")
        s3.delete_object(Bucket=BUCKET, Key="old")
        s3.put_object(Bucket=BUCKET, Key="new", Body=b"new body")
        state.save(tmp_path, dynamodb=dynamodb, s3=s3, api_key="k2")

    restored, _, bodies = _restarted(tmp_path)

    assert restored.api_key == "k2"
    assert {key: body for key, (body, _, _) in bodies.items()} == {"new": b"new body"}
    assert len(list((tmp_path / state.OBJECTS).iterdir())) == 1


def test_nothing_saved_yet_restores_nothing(tmp_path: Path) -> None:
    with _stack() as (dynamodb, s3):
        assert state.load(tmp_path / "new", dynamodb=dynamodb, s3=s3) == state.Restored(None, 0, 0)


def test_a_table_or_bucket_the_template_no_longer_has_is_skipped(tmp_path: Path) -> None:
    with _stack() as (dynamodb, s3):
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "kept"}})
        state.save(tmp_path, dynamodb=dynamodb, s3=s3, api_key="k")
    saved = json.loads((tmp_path / state.STATE_FILE).read_text())
    saved["tables"]["gone-table"] = [{"pk": {"S": "x"}}]
    saved["buckets"]["gone-bucket"] = [{"key": "k", "sha256": "0" * 64, "content_type": None, "metadata": {}}]
    (tmp_path / state.STATE_FILE).write_text(json.dumps(saved))

    restored, items, _ = _restarted(tmp_path)

    assert (restored.items, restored.objects, items) == (1, 0, [{"pk": {"S": "kept"}}])


@pytest.mark.parametrize(
    "content", ["{not json", json.dumps({"format": 99, "tables": {}, "buckets": {}}), json.dumps([1])]
)
def test_an_unreadable_or_foreign_snapshot_is_a_clear_error(tmp_path: Path, content: str) -> None:
    (tmp_path / state.STATE_FILE).write_text(content)
    with _stack() as (dynamodb, s3), pytest.raises(StateDirError, match=r"state\.json"):
        state.load(tmp_path, dynamodb=dynamodb, s3=s3)


def test_a_file_in_place_of_the_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with _stack() as (dynamodb, s3), pytest.raises(StateDirError, match="not a directory"):
        state.load(tmp_path / "file", dynamodb=dynamodb, s3=s3)


_SCALAR = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=8)),
    st.builds(lambda n: {"N": str(n)}, st.integers()),
    st.builds(lambda b: {"B": b}, st.binary(max_size=8)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(
        lambda bs: {"BS": sorted(bs)}, st.sets(st.binary(min_size=1, max_size=4), min_size=1, max_size=3)
    ),
)
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
        st.builds(lambda m: {"M": m}, st.dictionaries(st.text(min_size=1, max_size=5), inner, max_size=3)),
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda n: n != "pk"), _VALUE, max_size=4))
def test_any_attribute_value_is_written_back_as_it_was_read(attributes: dict[str, Any]) -> None:
    item = {"pk": {"S": "item"}, **attributes}
    encoded = json.loads(json.dumps(state._encode(item)))  # through the file's JSON
    assert state._decode(encoded) == item
