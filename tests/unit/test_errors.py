"""maskgate.errors: stable error types (the README's error table) and the names the state machine matches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maskgate.errors import (
    ERRORS_BY_NAME,
    ApiError,
    MaskgateError,
    RequestError,
    Retryable,
    UpstreamOutcomeUnknown,
    error_type_for,
)

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "segmentation.asl.json"

# Written from the documented error types and the exception tree, not read from the classes.
EXPECTED_TYPES = {
    "MaskgateError": "internal_error",
    "RequestError": "internal_error",
    "InvalidRequest": "invalid_request",
    "MissingPrompt": "missing_prompt",
    "InvalidImage": "invalid_image",
    "UploadChanged": "invalid_image",
    "ImageTooLarge": "image_too_large",
    "UrlNotAllowed": "url_not_allowed",
    "Missing": "not_found",
    "JobNotFound": "not_found",
    "ObjectNotFound": "not_found",
    "KeyNotFound": "not_found",
    "EndpointNotFound": "not_found",
    "EventNotFound": "not_found",
    "EndpointLimit": "invalid_request",
    "ApiError": "internal_error",
    "MalformedJson": "malformed_json",
    "Unauthorized": "unauthorized",
    "NotFound": "not_found",
    "MethodNotAllowed": "method_not_allowed",
    "Conflict": "conflict",
    "PayloadTooLarge": "payload_too_large",
    "RateLimited": "rate_limited",
    "QuotaExceeded": "quota_exceeded",
    "SpendCapReached": "spend_cap_reached",
    "QuotaDeferred": "quota_exceeded",
    "Retryable": "upstream_unavailable",
    "UpstreamRateLimited": "upstream_unavailable",
    "AdmissionDeferred": "upstream_unavailable",
    "AdmissionQueued": "upstream_unavailable",
    "ResultPending": "upstream_unavailable",
    "UpstreamUnavailable": "upstream_unavailable",
    "PredictionNotReady": "upstream_unavailable",
    "UpstreamOutcomeUnknown": "upstream_outcome_unknown",
    "NotSubmitted": "internal_error",
    "UpstreamRejected": "upstream_rejected",
    "UpstreamFailed": "upstream_failed",
    "PredictionTimedOut": "timeout",
    "OutputInvalid": "output_invalid",
    "JobNotSubmittable": "invalid_request",
    "ResultReused": "internal_error",
    "JobCanceled": "canceled",
    "NotConfigured": "internal_error",
    "InvalidTransition": "conflict",
}

DOCUMENTED_JOB_TYPES = {
    "invalid_request",
    "invalid_image",
    "image_too_large",
    "missing_prompt",
    "url_not_allowed",
    "upload_expired",
    "upstream_rejected",
    "upstream_unavailable",
    "upstream_outcome_unknown",
    "upstream_failed",
    "timeout",
    "output_invalid",
    "canceled",
    "quota_exceeded",
    "spend_cap_reached",
}
DOCUMENTED_API_TYPES = {
    "method_not_allowed",
    "malformed_json",
    "unauthorized",
    "not_found",
    "conflict",
    "payload_too_large",
    "rate_limited",
}


def _error_equals(node: object) -> list[tuple[str, str]]:
    """Every (state, name) in an ErrorEquals anywhere in the ASL document."""
    found: list[tuple[str, str]] = []

    def walk(value: object, state: str) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                if key == "ErrorEquals":
                    found.extend((state, name) for name in child)
                else:
                    walk(child, key if isinstance(child, dict) and "Type" in child else state)
        elif isinstance(value, list):
            for child in value:
                walk(child, state)

    walk(node, "")
    return found


def _retried_in(state_name: str) -> set[str]:
    state = json.loads(ASL.read_text())["States"][state_name]
    return {name for rule in state.get("Retry", []) for name in rule["ErrorEquals"]}


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED_TYPES.items()))
def test_error_type_for_class_name(name, expected):
    assert error_type_for(name) == expected


def test_error_type_for_covers_every_class():
    assert set(ERRORS_BY_NAME) == set(EXPECTED_TYPES)


@pytest.mark.parametrize("name", ["States.Timeout", "States.HeartbeatTimeout"])
def test_error_type_for_states_timeout_is_timeout(name):
    assert error_type_for(name) == "timeout"


@pytest.mark.parametrize(
    "name", ["States.TaskFailed", "States.ALL", "Lambda.ServiceException", "KeyError", "Exception", ""]
)
def test_error_type_for_unknown_name_is_internal_error(name):
    assert error_type_for(name) == "internal_error"


def test_errors_types_are_documented_types():
    types = {cls.type for cls in ERRORS_BY_NAME.values()}

    assert types <= DOCUMENTED_JOB_TYPES | DOCUMENTED_API_TYPES | {"internal_error", "webhook_failed"}


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("MalformedJson", 400),
        ("Unauthorized", 401),
        ("NotFound", 404),
        ("Conflict", 409),
        ("PayloadTooLarge", 413),
        ("RateLimited", 429),
    ],
)
def test_errors_api_error_status(name, status):
    cls = ERRORS_BY_NAME[name]

    assert issubclass(cls, ApiError)
    assert cls.status == status


@pytest.mark.parametrize(
    "name", ["InvalidRequest", "MissingPrompt", "InvalidImage", "ImageTooLarge", "UrlNotAllowed"]
)
def test_errors_request_errors_are_422(name):
    cls = ERRORS_BY_NAME[name]

    assert issubclass(cls, RequestError)
    assert cls.status == 422


def test_errors_every_class_has_a_title():
    assert all(cls.title for cls in ERRORS_BY_NAME.values())


def test_errors_keep_message_and_errors():
    exc = ERRORS_BY_NAME["InvalidRequest"]("bad", errors=[{"loc": "prompt", "msg": "too long"}])

    assert (str(exc), exc.message, exc.errors) == ("bad", "bad", [{"loc": "prompt", "msg": "too long"}])


def test_errors_default_to_an_empty_errors_list():
    assert MaskgateError("x").errors == []


def test_errors_outcome_unknown_is_not_retryable():
    assert not issubclass(UpstreamOutcomeUnknown, Retryable)


# --- the state machine -------------------------------------------------------------------------


def test_asl_error_equals_names_are_maskgate_errors():
    names = {name for _, name in _error_equals(json.loads(ASL.read_text()))}
    ours = {n for n in names if not n.startswith(("States.", "Lambda."))}

    assert ours  # the workflow does match on our names
    assert ours <= set(ERRORS_BY_NAME), ours - set(ERRORS_BY_NAME)


def test_asl_never_retries_an_error_that_is_not_retryable():
    document = json.loads(ASL.read_text())
    retried = {
        name
        for state in document["States"].values()
        for rule in state.get("Retry", [])
        if rule.get("MaxAttempts", 3) > 0
        for name in rule["ErrorEquals"]
        if name in ERRORS_BY_NAME
    }

    assert all(issubclass(ERRORS_BY_NAME[name], Retryable) for name in retried), retried


def test_asl_submit_outcome_unknown_is_never_raised_to_the_workflow():
    # Submit may retry on everything: the intent it writes before the POST makes a retry adopt, and an
    # unknown outcome is kept on the job (waiting for the prediction), never raised into a Retry
    assert "UpstreamOutcomeUnknown" not in _retried_in("Submit")
