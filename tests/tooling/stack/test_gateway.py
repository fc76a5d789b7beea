"""The API Gateway emulator turns requests into HTTP API payload 2.0 events and reads results back."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from maskgate_local.stack.gateway import ApiGatewayEmulator, FunctionError, Route
from maskgate_local.stack.servers import serve_in_thread

ROUTES = [
    Route("GET", "/v1/health", "health"),
    Route("POST", "/v1/segmentations", "api"),
    Route("GET", "/v1/segmentations/{id}", "api"),
    Route("ANY", "/v1/{thing}", "api"),
    Route("ANY", "/{proxy+}", "fallback"),
]


class Recorder:
    """An ``invoke`` that records its calls and answers with ``result(event)``."""

    def __init__(self, result: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._result = result or (lambda _event: {"statusCode": 200, "body": ""})

    def __call__(self, function_name: str, event: dict[str, Any]) -> Any:
        self.calls.append((function_name, event))
        return self._result(event)

    @property
    def event(self) -> dict[str, Any]:
        assert len(self.calls) == 1
        return self.calls[0][1]


@contextmanager
def gateway_client(recorder: Recorder, routes: list[Route] = ROUTES) -> Iterator[httpx.Client]:
    gateway = ApiGatewayEmulator(routes=routes, invoke=recorder, api_id="abc123")
    with serve_in_thread(gateway.app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(recorder: Recorder) -> Iterator[httpx.Client]:
    with gateway_client(recorder) as test_client:
        yield test_client


def test_gateway_get_event_carries_query_path_parameters_and_context(
    client: httpx.Client, recorder: Recorder
) -> None:
    # given
    before_ms = int(time.time() * 1000)
    # when
    client.get(
        "/v1/segmentations/seg_01%20x?status=queued&tag=a&tag=b",
        headers=[("X-Multi", "1"), ("X-Multi", "2"), ("User-Agent", "probe/1")],
    )
    # then
    function_name, event = recorder.calls[0]
    assert function_name == "api"
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /v1/segmentations/{id}"
    assert event["rawPath"] == "/v1/segmentations/seg_01%20x"
    assert event["rawQueryString"] == "status=queued&tag=a&tag=b"
    assert event["queryStringParameters"] == {"status": "queued", "tag": "a,b"}
    assert event["pathParameters"] == {"id": "seg_01 x"}
    assert event["headers"]["x-multi"] == "1,2"
    assert all(name == name.lower() for name in event["headers"])
    assert "cookies" not in event and "body" not in event
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["accountId"] == "123456789012"
    assert context["apiId"] == "abc123"
    assert context["routeKey"] == "GET /v1/segmentations/{id}"
    assert context["stage"] == "$default"
    assert context["http"] == {
        "method": "GET",
        "path": "/v1/segmentations/seg_01%20x",
        "protocol": "HTTP/1.1",
        "sourceIp": context["http"]["sourceIp"],
        "userAgent": "probe/1",
    }
    assert context["requestId"]
    assert re.fullmatch(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000", context["time"])
    assert before_ms <= context["timeEpoch"] <= int(time.time() * 1000)


def test_gateway_omits_empty_query_and_path_parameters(client: httpx.Client, recorder: Recorder) -> None:
    client.get("/v1/health")

    assert recorder.calls[0][0] == "health"
    event = recorder.event
    assert event["routeKey"] == "GET /v1/health"
    assert event["rawQueryString"] == ""
    assert "queryStringParameters" not in event
    assert "pathParameters" not in event
    assert "body" not in event


def test_gateway_routes_most_specific_first(client: httpx.Client, recorder: Recorder) -> None:
    client.delete("/v1/other")  # ANY /v1/{thing} beats ANY /{proxy+}
    client.get("/v2/deep/path")

    assert recorder.calls[0][1]["routeKey"] == "ANY /v1/{thing}"
    assert recorder.calls[0][1]["pathParameters"] == {"thing": "other"}
    assert recorder.calls[1][0] == "fallback"
    assert recorder.calls[1][1]["pathParameters"] == {"proxy": "v2/deep/path"}


def test_gateway_json_body_arrives_as_text(client: httpx.Client, recorder: Recorder) -> None:
    payload = '{"image": "https://example.com/cat.png", "prompt": "the cat"}'

    client.post("/v1/segmentations", content=payload, headers={"Content-Type": "application/json"})

    assert recorder.event["routeKey"] == "POST /v1/segmentations"
    assert recorder.event["body"] == payload
    assert recorder.event["isBase64Encoded"] is False


@pytest.mark.parametrize("content_type", ["application/vnd.api+json", "text/plain; charset=utf-8"])
def test_gateway_text_like_bodies_arrive_as_text(
    client: httpx.Client, recorder: Recorder, content_type: str
) -> None:
    client.post("/v1/segmentations", content=b"hello", headers={"Content-Type": content_type})

    assert recorder.event["body"] == "hello"
    assert recorder.event["isBase64Encoded"] is False


def test_gateway_binary_body_arrives_base64(client: httpx.Client, recorder: Recorder) -> None:
    payload = bytes(range(256)) * 4

    client.post("/v1/segmentations", content=payload, headers={"Content-Type": "image/png"})

    assert recorder.event["isBase64Encoded"] is True
    assert base64.b64decode(recorder.event["body"]) == payload


def test_gateway_cookies_move_out_of_the_headers(client: httpx.Client, recorder: Recorder) -> None:
    client.get("/v1/health", headers={"Cookie": "a=1; b=2"})

    assert recorder.event["cookies"] == ["a=1", "b=2"]
    assert "cookie" not in recorder.event["headers"]


def test_gateway_unmatched_route_is_404_without_invoking(recorder: Recorder) -> None:
    routes = [Route("GET", "/v1/health", "health")]
    with gateway_client(recorder, routes) as client:
        response = client.post("/v1/health")
        missing = client.get("/nowhere")

    assert response.status_code == 404
    assert missing.status_code == 404
    assert missing.json() == {"message": "Not Found"}
    assert recorder.calls == []


def test_gateway_invoke_error_is_500() -> None:
    def explode(event: dict[str, Any]) -> Any:
        raise RuntimeError("handler crashed")

    with gateway_client(Recorder(explode)) as client:
        response = client.get("/v1/health")

    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}


def test_gateway_function_error_is_500_and_the_next_request_is_served() -> None:
    calls: list[int] = []

    def timed_out_once(event: dict[str, Any]) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise FunctionError('api failed: {"errorType": "Sandbox.Timedout"}')
        return {"statusCode": 200, "body": "ok"}

    with gateway_client(Recorder(timed_out_once)) as client:
        failed = client.get("/v1/health")
        served = client.get("/v1/health")

    assert (failed.status_code, failed.json()) == (500, {"message": "Internal Server Error"})
    assert (served.status_code, served.text) == (200, "ok")


def test_gateway_body_over_10_mb_is_its_own_413(client: httpx.Client, recorder: Recorder) -> None:
    response = client.post(
        "/v1/segmentations", content=b"x" * (10 * 1024 * 1024 + 1), headers={"Content-Type": "text/plain"}
    )

    assert response.status_code == 413
    assert response.json() == {"message": "Request Entity Too Large"}
    assert recorder.calls == []


def test_gateway_event_over_the_6_mb_invoke_limit_is_500(client: httpx.Client, recorder: Recorder) -> None:
    # 4.8 MB of binary grows past 6 MB once base64-encoded into the event
    response = client.post(
        "/v1/segmentations", content=b"\x00" * (4800 * 1024), headers={"Content-Type": "image/png"}
    )

    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}
    assert recorder.calls == []


def test_gateway_body_under_the_limits_is_invoked(client: httpx.Client, recorder: Recorder) -> None:
    response = client.post(
        "/v1/segmentations", content=b"x" * (5 * 1024 * 1024), headers={"Content-Type": "text/plain"}
    )

    assert response.status_code == 200
    assert len(recorder.event["body"]) == 5 * 1024 * 1024


def test_gateway_converts_a_proxy_result() -> None:
    payload = b"\x89PNG\r\n\x1a\n binary"
    result = {
        "statusCode": 201,
        "headers": {"X-Thing": "1", "Content-Type": "image/png"},
        "cookies": ["session=abc; Path=/", "theme=dark"],
        "body": base64.b64encode(payload).decode(),
        "isBase64Encoded": True,
    }
    with gateway_client(Recorder(lambda _event: result)) as client:
        response = client.get("/v1/health")

    assert response.status_code == 201
    assert response.content == payload
    assert response.headers["x-thing"] == "1"
    assert response.headers["content-type"] == "image/png"
    assert response.headers.get_list("set-cookie") == ["session=abc; Path=/", "theme=dark"]


def test_gateway_text_proxy_result_keeps_its_body() -> None:
    result = {"statusCode": 404, "headers": {"content-type": "application/problem+json"}, "body": '{"a":1}'}
    with gateway_client(Recorder(lambda _event: result)) as client:
        response = client.get("/v1/health")

    assert response.status_code == 404
    assert response.json() == {"a": 1}


@pytest.mark.parametrize(
    ("result", "body"),
    [({"hello": "world"}, b'{"hello": "world"}'), ("Hello from Lambda!", b"Hello from Lambda!")],
)
def test_gateway_result_without_status_code_is_200_json(result: Any, body: bytes) -> None:
    with gateway_client(Recorder(lambda _event: result)) as client:
        response = client.get("/v1/health")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == body


def test_gateway_malformed_proxy_result_is_500() -> None:
    with gateway_client(Recorder(lambda _event: {"statusCode": 200, "body": {"not": "a string"}})) as client:
        response = client.get("/v1/health")

    assert response.status_code == 500
    assert json.loads(response.content) == {"message": "Internal Server Error"}
