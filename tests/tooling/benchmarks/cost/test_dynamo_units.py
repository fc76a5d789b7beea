"""benchmarks.cost.dynamo_units: DynamoDB item sizes and on-demand request units, by the developer
guide's rules.

Expected sizes are counted by hand from the rules (name bytes + value bytes, 3 bytes per list or map
plus 1 per element), not by calling the code under test.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.cost.dynamo_units import (
    IndexSpec,
    index_write_sizes,
    item_size,
    number_size,
    read_units,
    stored_bytes,
    write_cost,
    write_units,
)

TENANT_CREATED = IndexSpec("tenant-created", ("tenant", "created_at"), "ALL")
PREDICTION = IndexSpec("prediction", ("prediction_id",), "KEYS_ONLY")


def _job(padding: int, **extra: str) -> dict[str, dict[str, str]]:
    """A job-like item: pk (2 + 5), tenant (6 + 1), created_at (10 + 2) and d (1 + padding) bytes."""
    item = {"pk": {"S": "JOB#1"}, "tenant": {"S": "t"}, "created_at": {"S": "t0"}, "d": {"S": "x" * padding}}
    item.update({name: {"S": value} for name, value in extra.items()})
    return item


def test_item_size_counts_attribute_names_and_utf8_values() -> None:
    assert item_size({"pk": {"S": "JOB#1"}, "n": {"S": "é"}}) == (2 + 5) + (1 + 2)


@pytest.mark.parametrize(
    ("text", "size"), [("123", 3), ("1000", 2), ("0.0012", 2), ("-5", 2), ("12345678901234567890", 11)]
)
def test_number_size_is_one_byte_per_two_significant_digits_plus_one(text: str, size: int) -> None:
    assert number_size(text) == size


def test_item_size_of_lists_and_maps_adds_three_bytes_and_one_per_element() -> None:
    assert item_size({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}) == 1 + 3 + (1 + 2) + (1 + 2)
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + (1 + 1 + 1)


def test_item_size_of_binary_booleans_nulls_and_sets() -> None:
    item: dict[str, dict[str, Any]] = {
        "b": {"B": "AAEC"},
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "ss": {"SS": ["a", "bc"]},
        "ns": {"NS": ["1", "22"]},
    }
    assert item_size(item) == (1 + 3) + (1 + 1) + (1 + 1) + (2 + 3) + (2 + 2 + 2)


def test_item_size_of_no_item_is_zero() -> None:
    assert item_size(None) == 0


@pytest.mark.parametrize(("size", "units"), [(0, 1), (1, 1), (1024, 1), (1025, 2), (3000, 3)])
def test_write_units_round_up_to_the_next_kilobyte(size: int, units: int) -> None:
    assert write_units(size) == units


@pytest.mark.parametrize(
    ("size", "consistent", "units"),
    [(0, True, 1.0), (4096, True, 1.0), (4097, True, 2.0), (4097, False, 1.0)],
)
def test_read_units_round_up_to_4_kb_and_halve_when_eventually_consistent(
    size: int, consistent: bool, units: float
) -> None:
    assert read_units(size, consistent=consistent) == units


def test_write_cost_of_a_new_item_includes_its_all_projection_entry() -> None:
    # given an item of 26 + 1 + 1,100 bytes: 2 WRU in the table, 2 more for its copy in the ALL index
    new = _job(1100)
    # when
    cost = write_cost(None, new, succeeded=True, table_keys=("pk",), indexes=(TENANT_CREATED, PREDICTION))
    # then
    assert (cost.table_units, cost.index_units) == (2, 2)


def test_write_cost_of_an_update_is_sized_by_the_larger_of_before_and_after() -> None:
    before, after = _job(1500), _job(100)
    cost = write_cost(before, after, succeeded=True, table_keys=("pk",), indexes=())
    assert cost.table_units == 2


def test_an_update_that_sets_an_index_key_writes_the_keys_only_entry_once() -> None:
    before, after = _job(10), _job(10, prediction_id="p1")
    assert index_write_sizes(before, after, ("pk",), PREDICTION) == [(2 + 5) + (13 + 2)]


def test_an_update_that_changes_an_index_key_deletes_and_puts_the_entry() -> None:
    before, after = _job(10, prediction_id="p1"), _job(10, prediction_id="p2")
    assert len(index_write_sizes(before, after, ("pk",), PREDICTION)) == 2


def test_an_update_of_unprojected_attributes_leaves_a_keys_only_index_alone() -> None:
    before, after = _job(10, prediction_id="p1"), _job(500, prediction_id="p1")
    assert index_write_sizes(before, after, ("pk",), PREDICTION) == []


def test_a_failed_conditional_write_costs_the_existing_item_and_no_index_write() -> None:
    existing = _job(1500)
    cost = write_cost(existing, existing, succeeded=False, table_keys=("pk",), indexes=(TENANT_CREATED,))
    assert (cost.table_units, cost.index_units) == (2, 0)
    assert write_cost(None, None, succeeded=False).total == 1


def test_a_delete_costs_the_deleted_item_and_its_index_entries() -> None:
    existing = _job(1100, prediction_id="p1")
    cost = write_cost(
        existing, None, succeeded=True, deleted=True, table_keys=("pk",), indexes=(TENANT_CREATED, PREDICTION)
    )
    assert (cost.table_units, cost.index_units) == (2, 2 + 1)


def test_stored_bytes_count_every_index_entry_with_the_per_item_overhead() -> None:
    item = _job(100, prediction_id="p1")
    size = (2 + 5) + (6 + 1) + (10 + 2) + (1 + 100) + (13 + 2)
    keys_only = (2 + 5) + (13 + 2)
    assert stored_bytes(item, ("pk",), (TENANT_CREATED, PREDICTION)) == 2 * (size + 100) + keys_only + 100
