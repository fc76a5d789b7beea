"""maskgate.contracts.steps: the message of a caught error."""

from __future__ import annotations

import json

import pytest

from maskgate.contracts.steps import CaughtError


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
