"""Pure pieces of the workflow steps: the poll backoff and the message of a caught error."""

from __future__ import annotations

import json

import pytest

from maskgate.steps import next_wait
from maskgate.workflow import CaughtError

# --- next_wait ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "expected"),
    [(2, 3), (3, 5), (4, 6), (5, 8), (7, 11), (8, 12), (1, 2)],
)
def test_next_wait_grows_by_half_rounded_up(current, expected):
    assert next_wait(current, maximum=1000, remaining=10_000) == expected


def test_next_wait_is_capped_at_the_maximum():
    assert next_wait(20, maximum=25, remaining=10_000) == 25


def test_next_wait_stays_at_the_maximum():
    assert next_wait(25, maximum=25, remaining=10_000) == 25


def test_next_wait_sequence_from_three_to_the_cap():
    waits, wait = [], 3
    for _ in range(7):
        wait = next_wait(wait, maximum=20, remaining=10_000)
        waits.append(wait)

    assert waits == [5, 8, 12, 18, 20, 20, 20]


@pytest.mark.parametrize(("remaining", "expected"), [(7, 7), (1, 1), (2, 2)])
def test_next_wait_never_goes_past_the_deadline(remaining, expected):
    assert next_wait(10, maximum=30, remaining=remaining) == expected


@pytest.mark.parametrize("remaining", [6.2, 0.3, 11.999])
def test_next_wait_reaches_a_fractional_deadline_within_a_second(remaining):
    wait = next_wait(10, maximum=30, remaining=remaining)

    assert remaining <= wait < remaining + 1


@pytest.mark.parametrize("remaining", [0, -0.5, -100])
def test_next_wait_is_at_least_one_second_at_or_past_the_deadline(remaining):
    assert next_wait(10, maximum=30, remaining=remaining) == 1


def test_next_wait_is_at_least_one_second_from_zero():
    assert next_wait(0, maximum=30, remaining=100) == 1


def test_next_wait_returns_an_int():
    assert isinstance(next_wait(3, maximum=30, remaining=12.5), int)


# --- CaughtError.message -----------------------------------------------------------------------


def test_caught_error_message_reads_error_message_of_a_lambda_cause():
    cause = json.dumps(
        {"errorMessage": "the prediction failed: no object", "errorType": "UpstreamFailed", "stackTrace": []}
    )

    assert CaughtError(Error="UpstreamFailed", Cause=cause).message() == "the prediction failed: no object"


def test_caught_error_message_is_a_plain_text_cause():
    assert CaughtError(Error="States.TaskFailed", Cause="the task failed").message() == "the task failed"


@pytest.mark.parametrize("cause", [None, ""])
def test_caught_error_message_without_cause_is_the_error_name(cause):
    assert CaughtError(Error="States.Timeout", Cause=cause).message() == "States.Timeout"


@pytest.mark.parametrize(
    "cause",
    [
        pytest.param('{"errorType": "X"}', id="no-errorMessage"),
        pytest.param('{"errorMessage": ""}', id="empty-errorMessage"),
        pytest.param("[1, 2]", id="json-list"),
        pytest.param('"a json string"', id="json-string"),
        pytest.param("42", id="json-number"),
    ],
)
def test_caught_error_message_falls_back_to_the_raw_cause(cause):
    assert CaughtError(Error="Whatever", Cause=cause).message() == cause


def test_caught_error_message_is_capped_at_1000_chars():
    cause = json.dumps({"errorMessage": "m" * 5000})

    assert CaughtError(Error="UpstreamFailed", Cause=cause).message() == "m" * 1000


def test_caught_error_message_caps_a_plain_cause_at_1000_chars():
    assert len(CaughtError(Error="E", Cause="c" * 5000).message()) == 1000


def test_caught_error_ignores_extra_fields():
    caught = CaughtError.model_validate({"Error": "E", "Cause": "c", "Extra": 1})

    assert caught.message() == "c"
