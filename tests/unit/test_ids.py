"""maskgate.ids: job ids are ``seg_`` + 26 Crockford base32 chars, time-sortable."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from maskgate.ids import derived_job_id, job_id_time, new_job_id

ID_RE = re.compile(r"^seg_[0-9A-HJKMNP-TV-Z]{26}$")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
AT = datetime(2026, 11, 25, 12, 34, 56, 789000, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _millis(at: datetime) -> int:
    return (at - EPOCH) // timedelta(milliseconds=1)


def _time_chars(millis: int) -> str:
    """The first 10 chars of a ULID: the 48-bit time as 50 bits, 5 bits per char."""
    bits = format(millis, "050b")
    return "".join(CROCKFORD[int(bits[i : i + 5], 2)] for i in range(0, 50, 5))


def test_new_job_id_matches_the_contract_pattern():
    assert ID_RE.match(new_job_id(AT))


def test_new_job_id_is_random_for_the_same_instant():
    ids = {new_job_id(AT) for _ in range(50)}

    assert len(ids) == 50


def test_new_job_id_encodes_time_in_the_first_ten_chars():
    job_id = new_job_id(AT)

    assert job_id[4:14] == _time_chars(_millis(AT))


def test_new_job_id_at_epoch_starts_with_zeros():
    assert new_job_id(EPOCH)[4:14] == "0000000000"


def test_new_job_id_sorts_by_creation_time():
    times = [AT + timedelta(milliseconds=i) for i in range(0, 200, 7)]
    times += [AT + timedelta(days=d) for d in (1, 30, 365 * 5)]

    ids = [new_job_id(t) for t in times]

    assert sorted(ids) == ids


def test_new_job_id_refuses_naive_datetime():
    with pytest.raises(ValueError):
        new_job_id(datetime(2026, 1, 1))  # naive on purpose


@pytest.mark.parametrize(
    "at",
    [AT, EPOCH, datetime(2000, 2, 29, 23, 59, 59, 999000, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC)],
)
def test_job_id_time_round_trips(at):
    assert job_id_time(new_job_id(at)) == _millis(at)


def test_job_id_time_round_trips_derived_id():
    assert job_id_time(derived_job_id(AT, "bucket", "key")) == _millis(AT)


def test_derived_job_id_matches_the_contract_pattern():
    assert ID_RE.match(derived_job_id(AT, "bucket", "uploads/cat.png", "0055AED6DCD90281E5"))


def test_derived_job_id_is_deterministic_for_equal_parts():
    first = derived_job_id(AT, "bucket", "uploads/cat.png", "0055AED6DCD90281E5")
    again = derived_job_id(AT, "bucket", "uploads/cat.png", "0055AED6DCD90281E5")

    assert first == again


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(("other-bucket", "uploads/cat.png", "seq1"), id="bucket"),
        pytest.param(("bucket", "uploads/dog.png", "seq1"), id="key"),
        pytest.param(("bucket", "uploads/cat.png", "seq2"), id="discriminator"),
        pytest.param(("bucket", "uploads/cat.png"), id="fewer-parts"),
        pytest.param(("bucketuploads/cat.png", "seq1"), id="joined-parts"),
    ],
)
def test_derived_job_id_differs_for_different_parts(other):
    assert derived_job_id(AT, "bucket", "uploads/cat.png", "seq1") != derived_job_id(AT, *other)


def test_derived_job_id_random_part_does_not_depend_on_time():
    later = AT + timedelta(seconds=3)

    first = derived_job_id(AT, "b", "k", "e")
    second = derived_job_id(later, "b", "k", "e")

    assert first[14:] == second[14:]
    assert first[4:14] != second[4:14]
