"""The local stack's state on disk (``maskgate dev --state-dir DIR``): saved when the stack stops, loaded
when it starts.

What is kept: every item of every DynamoDB table (jobs, tenants and their keys, endpoints, the attempt
log, admission slots) and every S3 object with its metadata and content type (inputs, masks, uploads),
in the tables and buckets of the same names, which the template provisions again at each start; and the
default tenant's API key, so the ready file names the same key. Objects are files named by their
SHA-256 under ``DIR/objects``; ``DIR/state.json`` lists the rest and is replaced in one rename, so a
stack stopped while saving leaves the previous snapshot whole.

What is not: Step Functions executions (a job still running when the stack stopped has no workflow
after the restart: the reconcile sweep, ``maskgate reconcile``, restarts it), messages in SQS queues,
and the WaveSpeed emulator's predictions and key (a new emulator starts with the stack). Objects
written back do not notify: an upload restored under ``uploads/`` starts no second job.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = 1
STATE_FILE = "state.json"
OBJECTS = "objects"


class StateDirError(Exception):
    """The state directory cannot be used (unreadable snapshot, another format, not a directory)."""


@dataclass(frozen=True)
class Restored:
    """What a start found in the state directory."""

    api_key: str | None
    items: int
    objects: int


def save(directory: Path, *, dynamodb: Any, s3: Any, api_key: str) -> None:
    """Write every table's items and every bucket's objects to ``directory`` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    objects_dir = directory / OBJECTS
    objects_dir.mkdir(exist_ok=True)
    tables = {name: _items(dynamodb, name) for name in _table_names(dynamodb)}
    buckets: dict[str, list[dict[str, Any]]] = {}
    kept: set[str] = set()
    for bucket in (b["Name"] for b in s3.list_buckets().get("Buckets", [])):
        entries = buckets.setdefault(bucket, [])
        for key in _keys(s3, bucket):
            got = s3.get_object(Bucket=bucket, Key=key)
            body = got["Body"].read()
            digest = hashlib.sha256(body).hexdigest()
            target = objects_dir / digest
            if not target.exists():
                _write_atomically(target, body)
            kept.add(digest)
            entries.append(
                {
                    "key": key,
                    "sha256": digest,
                    "content_type": got.get("ContentType"),
                    "metadata": got.get("Metadata", {}),
                }
            )
    state = {"format": FORMAT, "api_key": api_key, "tables": tables, "buckets": buckets}
    _write_atomically(directory / STATE_FILE, json.dumps(state).encode())
    for stale in objects_dir.iterdir():  # objects of an earlier snapshot that none lists now
        if stale.name not in kept and not stale.name.endswith(".tmp"):
            stale.unlink(missing_ok=True)


def load(directory: Path, *, dynamodb: Any, s3: Any) -> Restored:
    """Put a saved snapshot back into the freshly provisioned tables and buckets; nothing saved yet
    (no ``state.json``) restores nothing. A table or bucket the template no longer has is skipped."""
    if directory.exists() and not directory.is_dir():
        raise StateDirError(f"{directory} is not a directory")
    path = directory / STATE_FILE
    if not path.is_file():
        return Restored(api_key=None, items=0, objects=0)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StateDirError(f"cannot read {path}: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise StateDirError(f"{path} is not a maskgate state file of format {FORMAT}")
    items = _put_items(dynamodb, state["tables"])
    objects = _put_objects(s3, state["buckets"], directory / OBJECTS)
    api_key = state.get("api_key")
    return Restored(api_key=api_key if isinstance(api_key, str) else None, items=items, objects=objects)


def _put_items(dynamodb: Any, tables: dict[str, list[dict[str, Any]]]) -> int:
    existing = set(_table_names(dynamodb))
    count = 0
    for table, items in tables.items():
        if table in existing:
            for item in items:
                dynamodb.put_item(TableName=table, Item=_decode(item))
                count += 1
    return count


def _put_objects(s3: Any, buckets: dict[str, list[dict[str, Any]]], objects_dir: Path) -> int:
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    count = 0
    for bucket, entries in buckets.items():
        if bucket not in existing:
            continue
        for entry in entries:
            body = (objects_dir / entry["sha256"]).read_bytes()
            extra = {"ContentType": entry["content_type"]} if entry.get("content_type") else {}
            s3.put_object(Bucket=bucket, Key=entry["key"], Body=body, Metadata=entry["metadata"], **extra)
            count += 1
    return count


def _table_names(dynamodb: Any) -> list[str]:
    names: list[str] = []
    for page in dynamodb.get_paginator("list_tables").paginate():
        names.extend(page.get("TableNames", []))
    return names


def _items(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(_encode(item) for item in page.get("Items", []))
    return items


def _keys(s3: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(entry["Key"] for entry in page.get("Contents", []))
    return keys


def _encode(value: Any) -> Any:
    """A DynamoDB item (typed attribute values) as JSON: binary values as base64 text."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(item: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `_encode` for one item: ``B`` and ``BS`` values back to bytes."""
    return {name: _decode_value(value) for name, value in item.items()}


def _decode_value(value: dict[str, Any]) -> dict[str, Any]:
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(v) for v in inner]}
    if kind == "M":
        return {"M": {k: _decode_value(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_decode_value(v) for v in inner]}
    return value


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
