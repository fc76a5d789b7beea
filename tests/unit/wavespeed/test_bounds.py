"""maskgate.wavespeed.client: malformed, huge and slow WaveSpeed answers end as typed errors, in bounded
time and memory. Slow answers come from a real loopback socket server; shapes from MockTransport."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from maskgate.contracts.prompts import parse_prompts
from maskgate.errors import UpstreamOutcomeUnknown, UpstreamRejected, UpstreamUnavailable
from maskgate.wavespeed.client import MAX_API_BYTES, WaveSpeedClient
from maskgate.wavespeed.prediction import Prediction
from tests.support.trickle import Answer, slow_server

BUDGET = 1.0
SLACK = 0.6  # scheduling on a shared machine; each slow answer below would take 10 s or more
IMAGE = "https://bucket.s3.amazonaws.com/inputs/seg_x/image.png"
PREDICTION = {"id": "pred_1", "status": "created", "outputs": [], "model": "wavespeed-ai/sam3-image"}
OK_BODY = json.dumps({"code": 200, "message": "success", "data": PREDICTION}).encode()


def _socket_client(port: int) -> WaveSpeedClient:
    return WaveSpeedClient(
        base_url=f"http://127.0.0.1:{port}",
        api_key="ws-key",
        output_hosts=("127.0.0.1",),
        local=True,
        call_seconds=BUDGET,
        download_seconds=BUDGET,
    )


def _mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> WaveSpeedClient:
    return WaveSpeedClient(
        base_url="https://api.wavespeed.ai",
        api_key="ws-key",
        output_hosts=("*.wavespeed.ai",),
        transport=httpx.MockTransport(handler),
        resolver=lambda host: ["93.184.215.14"],
        call_seconds=BUDGET,
    )


def _submit(client: WaveSpeedClient) -> Prediction:
    return client.submit(parse_prompts({"prompt": "the cat"}), image_url=IMAGE)


def _timed(call: Callable[[], object], error: type[Exception]) -> float:
    started = time.monotonic()
    with pytest.raises(error):
        call()
    return time.monotonic() - started


SLOW = [
    pytest.param(Answer(body=OK_BODY, trickle_head=0.15), id="head-trickled"),
    pytest.param(Answer(body=OK_BODY, trickle_body=0.15), id="body-trickled"),
    pytest.param(Answer(silent=True), id="never-answers"),
]


# --- slow answers, real sockets ------------------------------------------------------------------


@pytest.mark.parametrize("answer", SLOW)
def test_wavespeed_client_submit_slow_answer_is_outcome_unknown_within_the_budget(answer):
    with slow_server(answer) as server:
        elapsed = _timed(lambda: _submit(_socket_client(server.port)), UpstreamOutcomeUnknown)

    assert elapsed < BUDGET + SLACK
    assert len(server.requests) == 1  # it was sent: the prediction may exist


@pytest.mark.parametrize("answer", SLOW)
def test_wavespeed_client_get_prediction_slow_answer_is_unavailable_within_the_budget(answer):
    with slow_server(answer) as server:
        elapsed = _timed(lambda: _socket_client(server.port).get_prediction("pred_1"), UpstreamUnavailable)

    assert elapsed < BUDGET + SLACK


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Answer(body=b"x" * 200, content_type="image/png", trickle_body=0.1), id="body"),
        pytest.param(Answer(silent=True), id="never-answers"),
    ],
)
def test_wavespeed_client_download_slow_output_is_unavailable_within_the_budget(answer):
    with slow_server(answer) as server:
        client = _socket_client(server.port)
        elapsed = _timed(lambda: client.download(server.url("/outputs/0.png")), UpstreamUnavailable)

    assert elapsed < BUDGET + SLACK


def test_wavespeed_client_submit_prompt_answer_over_a_real_socket_is_read():
    with slow_server(Answer(body=OK_BODY)) as server:
        prediction = _submit(_socket_client(server.port))

    assert prediction.id == "pred_1"
    assert b"\r\nauthorization: bearer ws-key\r\n" in server.requests[0].lower()


def test_wavespeed_client_submit_refused_connection_is_unavailable():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(UpstreamUnavailable):
        _submit(_socket_client(port))


def test_wavespeed_client_rejects_a_budget_that_is_not_positive():
    with pytest.raises(ValueError, match="positive"):
        WaveSpeedClient(base_url="http://x", api_key="k", output_hosts=(), call_seconds=0)


# --- huge answers --------------------------------------------------------------------------------


def _endless(served: list[int]) -> Iterator[bytes]:
    for i in range(10_000):  # 640 MB if nothing stopped it
        served.append(i)
        yield b" " * 65536


def test_wavespeed_client_submit_2xx_body_over_the_cap_is_outcome_unknown_and_not_read_on():
    served: list[int] = []

    with pytest.raises(UpstreamOutcomeUnknown):
        _submit(_mock_client(lambda _: httpx.Response(200, content=_endless(served))))

    assert len(served) * 65536 <= MAX_API_BYTES + 65536


def test_wavespeed_client_get_prediction_declared_length_over_the_cap_is_unavailable_unread():
    served: list[int] = []
    headers = {"content-length": str(MAX_API_BYTES + 1)}

    def huge(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers, content=_endless(served))

    with pytest.raises(UpstreamUnavailable, match="larger than"):
        _mock_client(huge).get_prediction("pred_1")

    assert served == []


def test_wavespeed_client_get_prediction_body_at_the_cap_is_read():
    body = json.dumps({"code": 200, "data": PREDICTION, "pad": ""}).encode()
    padded = body.replace(b'"pad": ""', b'"pad": "' + b"p" * (MAX_API_BYTES - len(body)) + b'"')
    assert len(padded) == MAX_API_BYTES

    prediction = _mock_client(lambda _: httpx.Response(200, content=padded)).get_prediction("pred_1")

    assert prediction.id == "pred_1"


def test_wavespeed_client_get_prediction_deeply_nested_json_is_unavailable():
    body = b"[" * 200_000 + b"]" * 200_000

    with pytest.raises(UpstreamUnavailable, match="not JSON"):
        _mock_client(lambda _: httpx.Response(200, content=body)).get_prediction("pred_1")


def test_wavespeed_client_get_prediction_slow_chunks_stop_at_the_budget():
    served: list[int] = []

    def drip() -> Iterator[bytes]:
        for i in range(100):
            served.append(i)
            time.sleep(0.05)  # the fake trickles on purpose
            yield b" "

    elapsed = _timed(
        lambda: _mock_client(lambda _: httpx.Response(200, content=drip())).get_prediction("p"),
        UpstreamUnavailable,
    )

    assert elapsed < BUDGET + SLACK
    assert len(served) < 100


# --- malformed answers ---------------------------------------------------------------------------


def _data(data: object, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(status, json={"code": status, "message": "success", "data": data})


MALFORMED = [
    pytest.param(lambda _: httpx.Response(200, content=b"<html>gateway</html>"), id="html"),
    pytest.param(lambda _: httpx.Response(200, content=b"\xff\xfe\x00garbage"), id="not-utf8"),
    pytest.param(lambda _: httpx.Response(200, json=[1, 2, 3]), id="a-list"),
    pytest.param(lambda _: httpx.Response(200, json="data"), id="a-string"),
    pytest.param(lambda _: httpx.Response(200, json={"code": 200}), id="no-data"),
    pytest.param(_data(None), id="data-null"),
    pytest.param(_data([PREDICTION]), id="data-a-list"),
    pytest.param(_data("pred_1"), id="data-a-string"),
    pytest.param(_data({**PREDICTION, "id": 7}), id="id-a-number"),
    pytest.param(_data({**PREDICTION, "id": "../webhook/secret"}), id="id-leaves-the-path"),
    pytest.param(_data({**PREDICTION, "id": ""}), id="id-empty"),
    pytest.param(_data({k: v for k, v in PREDICTION.items() if k != "status"}), id="no-status"),
    pytest.param(_data({**PREDICTION, "status": "exploded"}), id="unknown-status"),
    pytest.param(_data({**PREDICTION, "outputs": "https://cdn.wavespeed.ai/0.png"}), id="outputs-a-string"),
    pytest.param(_data({**PREDICTION, "outputs": [1, 2]}), id="outputs-numbers"),
    pytest.param(_data({**PREDICTION, "outputs": [{"url": "x"}]}), id="outputs-objects"),
    pytest.param(_data({**PREDICTION, "error": {"message": "x"}}), id="error-an-object"),
]


@pytest.mark.parametrize("handler", MALFORMED)
def test_wavespeed_client_get_prediction_malformed_answer_is_unavailable(handler):
    with pytest.raises(UpstreamUnavailable):
        _mock_client(handler).get_prediction("pred_1")


@pytest.mark.parametrize("handler", MALFORMED)
def test_wavespeed_client_submit_malformed_2xx_is_outcome_unknown(handler):
    with pytest.raises(UpstreamOutcomeUnknown):
        _submit(_mock_client(handler))


@pytest.mark.parametrize("status", [301, 302, 304, 307])
def test_wavespeed_client_submit_redirect_is_outcome_unknown_and_not_followed(status):
    requests: list[httpx.Request] = []

    def redirect(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(status, headers={"location": "https://elsewhere.example/"})

    with pytest.raises(UpstreamOutcomeUnknown):
        _submit(_mock_client(redirect))

    assert len(requests) == 1


def test_wavespeed_client_submit_400_with_a_non_json_body_is_rejected_with_its_text():
    with pytest.raises(UpstreamRejected, match="bad image"):
        _submit(_mock_client(lambda _: httpx.Response(400, content=b"bad image")))


def test_wavespeed_client_submit_400_message_is_kept_short():
    with pytest.raises(UpstreamRejected) as caught:
        _submit(_mock_client(lambda _: httpx.Response(400, json={"message": "m" * 10_000})))

    assert len(caught.value.message) < 400


def test_wavespeed_client_get_prediction_outputs_null_reads_as_none_yet():
    prediction = _mock_client(_data({**PREDICTION, "outputs": None})).get_prediction("pred_1")

    assert prediction.outputs == []


@pytest.mark.parametrize("created_at", ["yesterday", 12, None, "x" * 1000, ["2026-01-01"]])
def test_wavespeed_client_get_prediction_unreadable_created_at_reads_as_unknown(created_at):
    prediction = _mock_client(_data({**PREDICTION, "created_at": created_at})).get_prediction("pred_1")

    assert prediction.created_at is None


def test_wavespeed_client_get_prediction_quotes_the_id_into_its_path_segment():
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"code": 200, "data": PREDICTION})

    _mock_client(record).get_prediction("a/../../webhook/secret")

    assert requests[0].url.raw_path == b"/api/v3/predictions/a%2F..%2F..%2Fwebhook%2Fsecret/result"


@pytest.mark.parametrize("handler", MALFORMED[:8])
def test_wavespeed_client_webhook_secret_malformed_answer_is_unavailable(handler):
    with pytest.raises(UpstreamUnavailable):
        _mock_client(handler).webhook_secret()


def test_wavespeed_client_webhook_secret_not_a_string_is_unavailable():
    with pytest.raises(UpstreamUnavailable):
        _mock_client(_data({"secret": 42})).webhook_secret()


def test_wavespeed_client_list_predictions_shares_one_budget_across_its_pages():
    items = [{**PREDICTION, "id": f"pred_{n}", "status": "completed"} for n in range(100)]
    page = json.dumps({"code": 200, "data": {"page": 1, "total": 300, "items": items}}).encode()
    answer = Answer(body=page, trickle_head=0.6 / len(Answer(body=page).head()))  # ~0.6 s a page
    now = datetime.now(UTC)

    with slow_server(answer) as server:
        client = _socket_client(server.port)
        elapsed = _timed(
            lambda: client.list_predictions(created_after=now - timedelta(hours=1), created_before=now),
            UpstreamUnavailable,
        )

    assert elapsed < BUDGET + SLACK
    assert len(server.requests) == 2  # three pages would have taken 1.8 s
