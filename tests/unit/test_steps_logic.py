"""Pure pieces of the workflow: the listening schedule and the message of a caught error."""

from __future__ import annotations

import json

import pytest

from maskgate.contracts.steps import CaughtError
from maskgate.workflow.timings import Timings

# --- Timings.schedule ----------------------------------------------------------------------------


def test_schedule_grows_by_half_rounded_up_then_holds_at_the_cap():
    # 3 → 5 (4.5↑) → 8 (7.5↑) → 12 → 18 → 27 → 30 (capped) …
    waits = Timings(initial_seconds=3, max_seconds=30, deadline_seconds=200).schedule()
    assert waits[:7] == [5, 8, 12, 18, 27, 30, 30]


def test_schedule_listens_past_the_deadline_by_one_maximum_window():
    timings = Timings(initial_seconds=3, max_seconds=30, deadline_seconds=200)
    waits = timings.schedule()
    assert 3 + sum(waits) >= 200 + 30
    assert 3 + sum(waits[:-1]) < 200 + 30


def test_schedule_for_the_local_stack_timings():
    # 1 → 2 (1.5↑) → 2 (capped) …, until 1 + sum ≥ 60 + 2
    waits = Timings(initial_seconds=1, max_seconds=2, deadline_seconds=60).schedule()
    assert waits == [2] * 31


def test_schedule_is_all_integers_of_at_least_one_second():
    waits = Timings(initial_seconds=1, max_seconds=1, deadline_seconds=10).schedule()
    assert waits and all(isinstance(w, int) and w >= 1 for w in waits)


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
