"""DynamoDB on-demand request units for one request, from the items it touched (DynamoDB's documented rules).

Item size (developer guide, "DynamoDB item sizes and formats"): the sum over attributes of the UTF-8
length of the name plus the value's size: strings their UTF-8 bytes, binaries their raw bytes, numbers
about one byte per two significant digits plus one, booleans and nulls one byte, lists and maps three
bytes plus one byte per element plus their elements (a map's elements include their names), sets the
sum of their members. Numbers are the one approximation (the guide itself says "approximately").

Writes ("read and write operations"): 1 WRU per started KB (1,024 bytes) of the larger of the item before
and after a PutItem or UpdateItem, of the deleted item for a DeleteItem; a conditional write whose
condition fails still consumes units for the existing item, at least one. Each global secondary index an
item enters, changes in or leaves costs one more write of its projection (two when its index key changes:
delete the old entry, put the new). Reads: 1 RRU per started 4 KB strongly consistent, half that
eventually consistent (GSIs are eventually consistent only); a Query sums the sizes it read before
rounding; a read that finds nothing still costs the minimum.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

Item = Mapping[str, Mapping[str, Any]]  # DynamoDB JSON: {"name": {"S": "value"}, ...}

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4 * 1024
STORAGE_OVERHEAD_BYTES = 100  # indexing overhead per stored item (and per index entry), for storage only


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index: its key attributes and what it projects."""

    name: str
    keys: tuple[str, ...]
    projection: str = "ALL"  # ALL | KEYS_ONLY | INCLUDE
    non_key_attributes: tuple[str, ...] = ()


def number_size(text: str) -> int:
    """Bytes of a DynamoDB number: one per two significant digits (leading and trailing zeros trimmed),
    plus one."""
    try:
        digits = "".join(str(digit) for digit in Decimal(text).normalize().as_tuple().digits)
    except InvalidOperation:
        digits = "".join(ch for ch in text if ch.isdigit())
    significant = digits.strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB JSON (``{"S": ...}``, ``{"M": {...}}``, ...)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        return number_size(str(data))
    if kind == "B":
        return len(_raw(data))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(member).encode()) for member in data)
    if kind == "NS":
        return sum(number_size(str(member)) for member in data)
    if kind == "BS":
        return sum(len(_raw(member)) for member in data)
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in data)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(element) for name, element in data.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def _raw(data: Any) -> bytes:
    return data if isinstance(data, bytes) else base64.b64decode(data)


def item_size(item: Item | None) -> int:
    """Bytes of an item: attribute names plus values (0 for no item)."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size_bytes: int) -> int:
    """WRUs of one standard write of an item of this size (at least one)."""
    return max(1, math.ceil(size_bytes / WRITE_UNIT_BYTES))


def read_units(size_bytes: int, *, consistent: bool) -> float:
    """RRUs of reading this many bytes (summed for a Query), at least the minimum read."""
    units = max(1, math.ceil(size_bytes / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def index_entry(item: Item | None, table_keys: Iterable[str], index: IndexSpec) -> dict[str, Any] | None:
    """The item's entry in ``index`` (its projected attributes), or None if the item is not in it."""
    if not item or any(key not in item for key in index.keys):
        return None
    if index.projection == "ALL":
        return dict(item)
    wanted = {*table_keys, *index.keys}
    if index.projection == "INCLUDE":
        wanted.update(index.non_key_attributes)
    return {name: value for name, value in item.items() if name in wanted}


def index_write_sizes(
    before: Item | None, after: Item | None, table_keys: Iterable[str], index: IndexSpec
) -> list[int]:
    """Sizes of the index writes one successful table write causes (empty: the index is untouched)."""
    keys = tuple(table_keys)
    old, new = index_entry(before, keys, index), index_entry(after, keys, index)
    if old is None and new is None:
        return []
    if old is None or new is None:
        return [item_size(new if old is None else old)]
    if any(old[key] != new[key] for key in index.keys):
        return [item_size(old), item_size(new)]  # the entry moves: delete, then put
    return [item_size(new)] if old != new else []


@dataclass(frozen=True)
class WriteCost:
    table_units: int
    index_units: int

    @property
    def total(self) -> int:
        return self.table_units + self.index_units


def write_cost(
    before: Item | None,
    after: Item | None,
    *,
    succeeded: bool,
    deleted: bool = False,
    table_keys: Iterable[str] = (),
    indexes: Iterable[IndexSpec] = (),
) -> WriteCost:
    """WRUs of a PutItem/UpdateItem (or DeleteItem when ``deleted``) given the item before and after."""
    if not succeeded:  # a failed condition: the existing item's size, at least one unit; indexes untouched
        return WriteCost(write_units(item_size(before)), 0)
    size = item_size(before) if deleted else max(item_size(before), item_size(after))
    keys = tuple(table_keys)
    index_units = sum(
        write_units(size)
        for index in indexes
        for size in index_write_sizes(before, None if deleted else after, keys, index)
    )
    return WriteCost(write_units(size), index_units)


def stored_bytes(item: Item | None, table_keys: Iterable[str], indexes: Iterable[IndexSpec]) -> int:
    """Bytes an item occupies in the table and its indexes, with the per-item overhead (for storage)."""
    if not item:
        return 0
    keys = tuple(table_keys)
    entries = [entry for entry in (index_entry(item, keys, index) for index in indexes) if entry is not None]
    return sum(item_size(entry) + STORAGE_OVERHEAD_BYTES for entry in [dict(item), *entries])
