"""Properties of maskgate.wavespeed.client under arbitrary WaveSpeed answers (hypothesis, MockTransport).

Whatever comes back (any status, non-JSON, random JSON, wrong types, bodies cut off or over the
cap, transport errors), the client raises only MaskgateError subclasses, and a submit is retryable
exactly where it surely did not land.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maskgate.contracts.prompts import parse_prompts
from maskgate.errors import (
    MaskgateError,
    Retryable,
    UpstreamFailed,
    UpstreamOutcomeUnknown,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from maskgate.wavespeed.client import MAX_API_BYTES, WaveSpeedClient
from maskgate.wavespeed.prediction import Prediction

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
MAYBE_SENT = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
    httpx.LocalProtocolError,
)
STATUSES = ("created", "processing", "completed", "failed")


@dataclass(frozen=True)
class Reply:
    """One answer the fake WaveSpeed gives: a status and a body, maybe chunked, maybe cut off."""

    status: int
    body: bytes
    chunk: int = 0  # 0: all at once
    cut_by: type[httpx.TransportError] | None = None  # raised after the body's first chunk

    def response(self) -> httpx.Response:
        if not self.chunk and self.cut_by is None:
            return httpx.Response(self.status, content=self.body)
        return httpx.Response(self.status, content=self._chunks())

    def _chunks(self) -> Iterator[bytes]:
        size = self.chunk or len(self.body) or 1
        for start in range(0, max(len(self.body), 1), size):
            yield self.body[start : start + size]
            if self.cut_by is not None:
                raise self.cut_by("the connection broke mid-body")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
field_values = json_values | st.sampled_from(
    [*STATUSES, "pred_1", "", [], ["https://cdn.wavespeed.ai/0.png"]]
)
prediction_like = st.fixed_dictionaries(
    {},
    optional={
        "id": field_values,
        "status": field_values,
        "outputs": field_values,
        "error": field_values,
        "model": field_values,
        "created_at": field_values,
    },
)
valid_prediction = st.fixed_dictionaries(
    {
        "id": st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True),
        "status": st.sampled_from(STATUSES),
        "outputs": st.lists(st.text(max_size=60), max_size=3),
        "error": st.none() | st.text(max_size=40),
    }
)


def _envelope(data: Any) -> bytes:
    return json.dumps({"code": 200, "message": "success", "data": data}).encode()


bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(_envelope),
    prediction_like.map(_envelope),
    valid_prediction.map(_envelope),
    st.just(b"[" * 100_000),  # nested past the parser's recursion limit
    st.just(b" " * (MAX_API_BYTES + 1)),  # over the cap
)
replies = st.builds(
    Reply,
    status=st.integers(min_value=100, max_value=599) | st.sampled_from([200, 400, 401, 403, 429, 500, 503]),
    body=bodies,
    chunk=st.sampled_from([0, 1, 7, 65536]),
    cut_by=st.none() | st.sampled_from(MAYBE_SENT[2:4]),
)
transport_errors = st.sampled_from([*NOT_SENT, *MAYBE_SENT])


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> WaveSpeedClient:
    return WaveSpeedClient(
        base_url="https://api.wavespeed.ai",
        api_key="ws-key",
        output_hosts=("*.wavespeed.ai",),
        transport=httpx.MockTransport(handler),
    )


def _submit(reply: Reply) -> Prediction:
    client = _client(lambda _: reply.response())
    return client.submit(parse_prompts({"prompt": "cat"}), image_url="https://bucket.example/i.png")


def _outcome(call: Callable[[], Prediction]) -> Prediction | MaskgateError:
    """The call's result or its MaskgateError; anything else fails the property."""
    try:
        return call()
    except MaskgateError as exc:
        return exc


def _expected_submit_error(reply: Reply) -> type[MaskgateError] | None:
    """The class a submit answered so must raise; None where a 2xx may parse."""
    status = reply.status
    if status == 429:
        return UpstreamRateLimited
    if status == 503:
        return UpstreamUnavailable
    if 400 <= status < 500:
        return UpstreamRejected
    if 200 <= status < 300:
        return None
    return UpstreamOutcomeUnknown  # other 5xx, 1xx, 3xx: it may have landed


@PROPERTY
@given(reply=replies)
def test_property_submit_classification_holds_for_any_answer(reply):
    outcome = _outcome(lambda: _submit(reply))

    expected = _expected_submit_error(reply)
    if expected is not None:
        assert type(outcome) is expected
    elif not isinstance(outcome, Prediction):
        # a 2xx landed: whatever went wrong reading it, never retried
        assert type(outcome) is UpstreamOutcomeUnknown
        assert not isinstance(outcome, Retryable)


@PROPERTY
@given(reply=replies)
def test_property_get_prediction_raises_only_typed_errors(reply):
    outcome = _outcome(lambda: _client(lambda _: reply.response()).get_prediction("pred_1"))

    if isinstance(outcome, Prediction):
        assert 200 <= reply.status < 300
    elif reply.status == 404:
        assert type(outcome) is UpstreamFailed
    elif 400 <= reply.status < 500 and reply.status != 429:
        assert type(outcome) is UpstreamRejected
    else:
        assert isinstance(outcome, Retryable)  # a read is always safe to retry


@PROPERTY
@given(data=valid_prediction)
def test_property_a_well_formed_2xx_submit_parses(data):
    prediction = _submit(Reply(200, _envelope(data)))

    assert (prediction.id, prediction.status, prediction.outputs) == (
        data["id"],
        data["status"],
        data["outputs"],
    )


@PROPERTY
@given(error=transport_errors)
def test_property_submit_is_retryable_only_when_nothing_was_sent(error):
    def fail(request: httpx.Request) -> httpx.Response:
        raise error("no answer", request=request)

    outcome = _outcome(
        lambda: _client(fail).submit(parse_prompts({"prompt": "cat"}), image_url="https://b/i")
    )

    assert type(outcome) is (UpstreamUnavailable if error in NOT_SENT else UpstreamOutcomeUnknown)


@PROPERTY
@given(error=transport_errors)
def test_property_get_prediction_transport_errors_are_retryable(error):
    def fail(request: httpx.Request) -> httpx.Response:
        raise error("no answer", request=request)

    assert type(_outcome(lambda: _client(fail).get_prediction("pred_1"))) is UpstreamUnavailable


@PROPERTY
@given(reply=replies)
def test_property_webhook_secret_raises_only_typed_errors(reply):
    try:
        secret = _client(lambda _: reply.response()).webhook_secret()
    except MaskgateError as exc:
        assert isinstance(exc, Retryable)
    else:
        assert reply.status == 200 and isinstance(secret, str) and secret


@pytest.mark.parametrize("status", [200, 201, 299])
def test_property_anchor_2xx_cut_off_mid_body_is_outcome_unknown(status):
    reply = Reply(status, _envelope({"id": "p", "status": "created"}), chunk=5, cut_by=httpx.ReadError)

    assert type(_outcome(lambda: _submit(reply))) is UpstreamOutcomeUnknown
