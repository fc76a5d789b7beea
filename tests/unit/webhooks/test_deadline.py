"""maskgate.webhooks.sender: one attempt ends within its wall-clock budget, however slowly the receiver
answers (a real loopback socket server, through the production pinned client)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from maskgate.errors import NotConfigured
from maskgate.settings import settings_from
from maskgate.webhooks.sender import DEADLINE_ERROR, WebhookSender
from tests.support.trickle import Answer, fine, slow_server

BUDGET = 1.0
SLACK = 0.6  # scheduling on a shared 2-CPU machine; the trickles below would take 10 s or more
SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
REQUIRED = {"MASKGATE_TABLE": "t", "MASKGATE_BUCKET": "b", "MASKGATE_STATE_MACHINE_ARN": "arn"}


def _attempt(sender: WebhookSender, url: str) -> tuple[float, object]:
    started = time.monotonic()
    attempt = sender.send(
        url,
        msg_id="msg_abc_succeeded",
        body="{}",
        secrets_=[SECRET],
        event="segmentation.succeeded",
        attempt=1,
    )
    return time.monotonic() - started, attempt


def _sender(**kwargs: object) -> WebhookSender:
    return WebhookSender(local=True, attempt_seconds=BUDGET, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Answer(status=204, trickle_head=0.15), id="status-line-and-headers-trickled"),
        pytest.param(Answer(status=200, body=b"x" * 100, trickle_body=0.15), id="body-trickled"),
        pytest.param(Answer(silent=True), id="accepts-never-answers"),
    ],
)
def test_webhook_sender_send_a_slow_receiver_is_cut_off_at_the_budget(answer):
    with slow_server(answer) as server:
        elapsed, attempt = _attempt(_sender(), server.url())

    assert BUDGET - 0.05 <= elapsed < BUDGET + SLACK
    assert attempt.outcome == "retrying"
    assert attempt.error == DEADLINE_ERROR
    assert attempt.status_code is None
    assert BUDGET * 1000 - 50 <= attempt.latency_ms < (BUDGET + SLACK) * 1000
    assert len(server.requests) == 1  # the receiver did get the request


def test_webhook_sender_send_a_prompt_receiver_is_delivered_well_inside_the_budget():
    with slow_server(fine(204)) as server:
        elapsed, attempt = _attempt(_sender(), server.url())

    assert elapsed < BUDGET
    assert (attempt.outcome, attempt.status_code, attempt.error) == ("delivered", 204, None)
    assert b"webhook-signature: v1," in server.requests[0]


def test_webhook_sender_send_a_trickle_that_ends_inside_the_budget_is_delivered():
    answer = Answer(status=200, body=b"ok", trickle_body=0.05)

    with slow_server(answer) as server:
        elapsed, attempt = _attempt(_sender(), server.url())

    assert elapsed < BUDGET
    assert attempt.outcome == "delivered"


def test_webhook_sender_send_an_injected_transport_is_held_to_the_budget_between_body_chunks():
    pause = threading.Event()

    def drip() -> Iterator[bytes]:
        for _ in range(100):  # 10 s if nothing stopped it
            pause.wait(0.1)  # the fake trickles on purpose
            yield b"x"

    sender = _sender(transport=httpx.MockTransport(lambda _: httpx.Response(200, content=drip())))

    elapsed, attempt = _attempt(sender, "http://127.0.0.1:9/hook")

    assert elapsed < BUDGET + SLACK
    assert (attempt.outcome, attempt.error) == ("retrying", DEADLINE_ERROR)


def test_webhook_sender_send_a_plain_timeout_before_the_budget_keeps_its_own_name():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    _, attempt = _attempt(_sender(transport=httpx.MockTransport(slow)), "http://127.0.0.1:9/hook")

    assert (attempt.outcome, attempt.error) == ("retrying", "ReadTimeout")


@pytest.mark.parametrize("seconds", [0, -1, 15.5, 60])
def test_webhook_sender_refuses_a_budget_outside_0_to_15_seconds(seconds):
    with pytest.raises(ValueError, match="attempt_seconds"):
        WebhookSender(local=True, attempt_seconds=seconds)


def test_webhook_sender_default_budget_is_10_seconds():
    assert WebhookSender(local=True)._attempt_seconds == 10


def test_settings_webhook_attempt_seconds_defaults_to_10_and_reads_its_variable():
    assert settings_from(REQUIRED).webhook_attempt_seconds == 10
    assert settings_from({**REQUIRED, "MASKGATE_WEBHOOK_ATTEMPT_SECONDS": "3"}).webhook_attempt_seconds == 3


@pytest.mark.parametrize("value", ["0", "16"])
def test_settings_webhook_attempt_seconds_is_between_1_and_15(value):
    with pytest.raises(NotConfigured):
        settings_from({**REQUIRED, "MASKGATE_WEBHOOK_ATTEMPT_SECONDS": value})
