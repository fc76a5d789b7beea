"""maskgate.wavespeed.client: the WaveSpeed client against ``httpx.MockTransport``.

Errors are classified by what they mean for a retry: a submit is retried only where it surely did
not land; a read is always safe to retry."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from maskgate.contracts.prompts import parse_prompts
from maskgate.errors import (
    OutputInvalid,
    Retryable,
    UpstreamFailed,
    UpstreamOutcomeUnknown,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from maskgate.wavespeed.client import WaveSpeedClient, host_allowed
from maskgate.wavespeed.prediction import Prediction, wire_body
from tests.support.fakes import Recording

BASE = "https://api.wavespeed.ai"
IMAGE = "https://bucket.s3.amazonaws.com/inputs/seg_x/image.png?X-Amz-Signature=abc"
OUTPUT = "https://d1q70pf5vjeyhc.cloudfront.net/predictions/abc/0.png"
HOSTS = ("*.wavespeed.ai", "*.cloudfront.net")


def _prediction(**fields: object) -> dict[str, object]:
    data: dict[str, object] = {
        "id": "pred_123",
        "model": "wavespeed-ai/sam3-image",
        "outputs": [],
        "urls": {"get": f"{BASE}/api/v3/predictions/pred_123/result"},
        "has_nsfw_contents": [],
        "status": "created",
        "created_at": "2026-11-25T12:00:00.000Z",
        "error": "",
        "timings": {"inference": 0},
    }
    data.update(fields)
    return data


def _envelope(**fields: object) -> dict[str, object]:
    return {"code": 200, "message": "success", "data": _prediction(**fields)}


Server = Recording  # a plain function as the server, recording every request


def _client(server: Server, *, api_key: str = "ws-key") -> WaveSpeedClient:
    return WaveSpeedClient(
        base_url=BASE,
        api_key=api_key,
        output_hosts=HOSTS,
        transport=httpx.MockTransport(server),
        resolver=lambda host: ["93.184.215.14"],  # a public address: no DNS in tests
    )


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=_envelope())


def _answer(status: int, body: object = None) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        if body is None:
            return httpx.Response(status, json={"code": status, "message": "error", "data": None})
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)

    return answer


def _raise(error: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise error

    return answer


def _submit(client: WaveSpeedClient, webhook_url: str | None = None) -> Prediction:
    return client.submit(parse_prompts({"prompt": "the cat"}), image_url=IMAGE, webhook_url=webhook_url)


# --- the submit request ------------------------------------------------------------------------


def test_wire_body_text_prompt_sends_apply_mask_and_format_explicitly():
    body = wire_body(parse_prompts({"prompt": "the cat"}), IMAGE)

    assert body == {"image": IMAGE, "prompt": "the cat", "apply_mask": False, "output_format": "png"}


def test_wire_body_sends_apply_mask_true_when_asked():
    body = wire_body(parse_prompts({"prompt": "cat", "apply_mask": True, "output_format": "webp"}), IMAGE)

    assert body["apply_mask"] is True
    assert body["output_format"] == "webp"


def test_wire_body_sends_points_and_boxes_in_pixels():
    prompts = parse_prompts(
        {
            "point_prompts": [{"x": 120, "y": 80}, {"x": 5.5, "y": 6, "label": 0}],
            "box_prompts": [{"x_min": 10, "y_min": 20, "x_max": 200, "y_max": 180}],
        }
    )

    body = wire_body(prompts, IMAGE)

    assert body == {
        "image": IMAGE,
        "apply_mask": False,
        "output_format": "png",
        "point_prompts": [{"x": 120, "y": 80, "label": 1}, {"x": 5.5, "y": 6, "label": 0}],
        "box_prompts": [{"x_min": 10, "y_min": 20, "x_max": 200, "y_max": 180}],
    }


def test_wire_body_has_no_none_fields_and_keeps_our_fields_to_ourselves():
    prompts = parse_prompts(
        {
            "box_prompts": [{"x_min": 0, "y_min": 0, "x_max": 1, "y_max": 1}],
            "metadata": {"order": "7"},
            "webhook_url": "https://example.com/hooks",
        }
    )

    body = wire_body(prompts, IMAGE)

    assert None not in body.values()
    assert set(body) == {"image", "apply_mask", "output_format", "box_prompts"}


def test_wavespeed_client_submit_posts_the_wire_body_as_json():
    server = Server(_ok)

    _submit(_client(server))

    request = server.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/api/v3/wavespeed-ai/sam3-image"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "image": IMAGE,
        "prompt": "the cat",
        "apply_mask": False,
        "output_format": "png",
    }


def test_wavespeed_client_submit_sends_the_bearer_key():
    server = Server(_ok)

    _submit(_client(server, api_key="secret-key-1"))

    assert server.requests[0].headers["authorization"] == "Bearer secret-key-1"


def test_wavespeed_client_submit_passes_the_callback_as_webhook_param():
    server = Server(_ok)
    callback = "https://api.example.com/v1/callbacks/wavespeed?job=seg_01JDQ0000000000000000000AB"

    _submit(_client(server), webhook_url=callback)

    url = server.requests[0].url
    assert url.params["webhook"] == callback
    assert list(url.params) == ["webhook"]  # the job= of the callback stays inside, URL-encoded
    assert b"job%3Dseg_" in url.query


def test_wavespeed_client_submit_without_callback_has_no_query():
    server = Server(_ok)

    _submit(_client(server))

    assert server.requests[0].url.query == b""


def test_wavespeed_client_submit_parses_the_envelope():
    server = Server(lambda _: httpx.Response(200, json=_envelope(id="pred_9", status="processing")))

    prediction = _submit(_client(server))

    assert prediction == Prediction(
        id="pred_9",
        status="processing",
        outputs=[],
        error="",
        model="wavespeed-ai/sam3-image",
        created_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
    )
    assert not prediction.finished


# --- submit errors -----------------------------------------------------------------------------


def test_wavespeed_client_submit_400_is_rejected_with_the_vendor_message():
    server = Server(_answer(400, {"code": 400, "message": "image could not be fetched", "data": None}))

    with pytest.raises(UpstreamRejected) as caught:
        _submit(_client(server))

    assert "image could not be fetched" in caught.value.message
    assert not isinstance(caught.value, Retryable)


@pytest.mark.parametrize("status", [401, 403])
def test_wavespeed_client_submit_bad_key_is_rejected(status):
    with pytest.raises(UpstreamRejected):
        _submit(_client(Server(_answer(status))))


def test_wavespeed_client_submit_429_is_rate_limited_and_retryable():
    with pytest.raises(UpstreamRateLimited) as caught:
        _submit(_client(Server(_answer(429))))

    assert isinstance(caught.value, Retryable)


def test_wavespeed_client_submit_503_is_unavailable_and_retryable():
    with pytest.raises(UpstreamUnavailable) as caught:
        _submit(_client(Server(_answer(503, b"Service Unavailable"))))

    assert isinstance(caught.value, Retryable)


@pytest.mark.parametrize("status", [500, 502, 504])
def test_wavespeed_client_submit_other_5xx_is_outcome_unknown_not_retryable(status):
    with pytest.raises(UpstreamOutcomeUnknown) as caught:
        _submit(_client(Server(_answer(status))))

    assert not isinstance(caught.value, Retryable)


@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow connect")])
def test_wavespeed_client_submit_connect_failure_is_unavailable(error):
    with pytest.raises(UpstreamUnavailable):
        _submit(_client(Server(_raise(error))))


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("slow"),
        httpx.WriteTimeout("slow"),
        httpx.RemoteProtocolError("reset"),
        httpx.ReadError("reset"),
    ],
)
def test_wavespeed_client_submit_failure_after_sending_is_outcome_unknown(error):
    with pytest.raises(UpstreamOutcomeUnknown) as caught:
        _submit(_client(Server(_raise(error))))

    assert not isinstance(caught.value, Retryable)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html>ok</html>", id="not-json"),
        pytest.param({"code": 200, "data": {"id": "p"}}, id="no-status"),
    ],
)
def test_wavespeed_client_submit_unreadable_2xx_is_outcome_unknown(body):
    with pytest.raises(UpstreamOutcomeUnknown):
        _submit(_client(Server(_answer(200, body))))


# --- reading a prediction ----------------------------------------------------------------------


def test_wavespeed_client_get_prediction_reads_the_result_path():
    server = Server(lambda _: httpx.Response(200, json=_envelope(id="pred_7", status="processing")))

    _client(server).get_prediction("pred_7")

    request = server.requests[0]
    assert request.method == "GET"
    assert request.url == httpx.URL(f"{BASE}/api/v3/predictions/pred_7/result")
    assert request.headers["authorization"] == "Bearer ws-key"


def test_wavespeed_client_get_prediction_completed_has_outputs():
    server = Server(lambda _: httpx.Response(200, json=_envelope(status="completed", outputs=[OUTPUT])))

    prediction = _client(server).get_prediction("pred_123")

    assert prediction.status == "completed"
    assert prediction.outputs == [OUTPUT]
    assert prediction.finished


def test_wavespeed_client_get_prediction_failed_is_a_200_with_the_error():
    server = Server(lambda _: httpx.Response(200, json=_envelope(status="failed", error="no object found")))

    prediction = _client(server).get_prediction("pred_123")

    assert (prediction.status, prediction.error, prediction.finished) == ("failed", "no object found", True)


def test_wavespeed_client_get_prediction_404_is_upstream_failed():
    with pytest.raises(UpstreamFailed):
        _client(Server(_answer(404))).get_prediction("pred_gone")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_wavespeed_client_get_prediction_5xx_is_unavailable(status):
    with pytest.raises(UpstreamUnavailable):
        _client(Server(_answer(status))).get_prediction("pred_123")


def test_wavespeed_client_get_prediction_429_is_rate_limited():
    with pytest.raises(UpstreamRateLimited):
        _client(Server(_answer(429))).get_prediction("pred_123")


@pytest.mark.parametrize("status", [400, 401])
def test_wavespeed_client_get_prediction_4xx_is_rejected(status):
    with pytest.raises(UpstreamRejected):
        _client(Server(_answer(status))).get_prediction("pred_123")


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset")]
)
def test_wavespeed_client_get_prediction_transport_error_is_unavailable(error):
    with pytest.raises(UpstreamUnavailable):
        _client(Server(_raise(error))).get_prediction("pred_123")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param([1, 2], id="json-list"),
        pytest.param({"code": 200, "message": "success"}, id="no-data"),
        pytest.param({"code": 200, "data": None}, id="null-data"),
        pytest.param({"code": 200, "data": {"status": "completed"}}, id="no-id"),
        pytest.param({"code": 200, "data": {"id": "p", "status": "queued"}}, id="unknown-status"),
        pytest.param(
            {"code": 200, "data": {"id": "p", "status": "completed", "outputs": "x"}}, id="bad-outputs"
        ),
    ],
)
def test_wavespeed_client_get_prediction_unreadable_body_is_unavailable(body):
    with pytest.raises(UpstreamUnavailable):
        _client(Server(_answer(200, body))).get_prediction("pred_123")


# --- downloading outputs -----------------------------------------------------------------------


def test_wavespeed_client_download_returns_the_bytes():
    server = Server(lambda _: httpx.Response(200, content=b"\x89PNG mask bytes"))

    assert _client(server).download(OUTPUT) == b"\x89PNG mask bytes"
    assert server.requests[0].url == httpx.URL(OUTPUT)


def test_wavespeed_client_download_does_not_send_the_api_key():
    server = Server(lambda _: httpx.Response(200, content=b"x"))

    _client(server, api_key="secret-key-1").download(OUTPUT)

    assert "secret-key-1" not in server.requests[0].headers.get("authorization", "")


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/0.png",
        "https://wavespeed.ai.evil.com/0.png",
        "http://169.254.169.254/latest/meta-data/",
        "https://user:pw@cdn.wavespeed.ai/0.png",
        "file:///etc/passwd",
    ],
)
def test_wavespeed_client_download_refuses_a_host_off_the_allow_list_without_fetching(url):
    server = Server(lambda _: httpx.Response(200, content=b"x"))

    with pytest.raises(OutputInvalid):
        _client(server).download(url)

    assert server.requests == []


def test_wavespeed_client_download_refuses_output_over_the_cap():
    server = Server(lambda _: httpx.Response(200, content=b"x" * 1001))

    with pytest.raises(OutputInvalid):
        _client(server).download(OUTPUT, max_bytes=1000)


def test_wavespeed_client_download_accepts_output_at_the_cap():
    server = Server(lambda _: httpx.Response(200, content=b"x" * 1000))

    assert len(_client(server).download(OUTPUT, max_bytes=1000)) == 1000


def test_wavespeed_client_download_stops_reading_a_streamed_output_over_the_cap():
    served = []

    def chunks():
        for i in range(100):
            served.append(i)
            yield b"x" * 1000

    server = Server(lambda _: httpx.Response(200, content=chunks()))

    with pytest.raises(OutputInvalid):
        _client(server).download(OUTPUT, max_bytes=5000)

    assert len(served) < 100


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_wavespeed_client_download_5xx_and_429_are_unavailable(status):
    with pytest.raises(UpstreamUnavailable):
        _client(Server(_answer(status, b"oops"))).download(OUTPUT)


@pytest.mark.parametrize("status", [403, 404, 410])
def test_wavespeed_client_download_4xx_is_output_invalid(status):
    with pytest.raises(OutputInvalid):
        _client(Server(_answer(status, b"gone"))).download(OUTPUT)


def test_wavespeed_client_download_does_not_follow_redirects():
    server = Server(lambda _: httpx.Response(302, headers={"location": "http://169.254.169.254/"}))

    with pytest.raises(OutputInvalid):
        _client(server).download(OUTPUT)

    assert len(server.requests) == 1


def test_wavespeed_client_download_transport_error_is_unavailable():
    with pytest.raises(UpstreamUnavailable):
        _client(Server(_raise(httpx.ReadTimeout("slow")))).download(OUTPUT)


# --- host_allowed ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://cdn.wavespeed.ai/x.png", True),
        ("https://a.b.wavespeed.ai/x.png", True),
        ("https://CDN.WaveSpeed.AI/x.png", True),
        ("http://cdn.wavespeed.ai/x.png", True),
        ("https://d1.cloudfront.net/x.png", True),
        ("https://wavespeed.ai/x.png", False),  # the bare domain is not *.wavespeed.ai
        ("https://wavespeed.ai.evil.com/x.png", False),
        ("https://evilwavespeed.ai/x.png", False),
        ("https://cdn.wavespeed.ai.:443/x.png", False),
        ("https://user@cdn.wavespeed.ai/x.png", False),
        ("https://cdn.wavespeed.ai@evil.com/x.png", False),
        ("ftp://cdn.wavespeed.ai/x.png", False),
        ("/relative/x.png", False),
        ("", False),
    ],
)
def test_host_allowed_matches_patterns(url, allowed):
    assert host_allowed(url, HOSTS) is allowed


def test_host_allowed_exact_host_pattern():
    assert host_allowed("http://127.0.0.1:5100/outputs/0.png", ("127.0.0.1",))
    assert not host_allowed("http://127.0.0.2:5100/outputs/0.png", ("127.0.0.1",))


def test_host_allowed_refuses_everything_with_no_patterns():
    assert not host_allowed("https://cdn.wavespeed.ai/x.png", ())
