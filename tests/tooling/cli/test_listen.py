"""``maskgate listen``'s verifier: the tenant's secret, and the local stack's registered endpoints' own
secrets, looked up again when a delivery matches none (at most every LOOKUP_EVERY_S seconds)."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

from maskgate_local.cli.listen import Listener


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


TENANT, ENDPOINT = whsec(), whsec()
EVENT = {"type": "segmentation.succeeded", "data": {"id": "seg_x", "status": "succeeded"}}


def signed(secret: str, msg_id: str = "msg_1") -> tuple[dict[str, str], bytes]:
    body = json.dumps(EVENT).encode()
    now = datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, now, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }, body


class Lookups:
    def __init__(self, found: dict[str, str]) -> None:
        self.found, self.calls = found, 0

    def __call__(self) -> dict[str, str]:
        self.calls += 1
        return dict(self.found)


def test_an_endpoint_signed_delivery_is_verified_with_the_endpoint_s_secret_looked_up_then() -> None:
    said: list[str] = []
    lookups, now = Lookups({"ep_1": ENDPOINT}), [100.0]
    listener = Listener(TENANT, said.append, endpoint_secrets=lookups, clock=lambda: now[0])

    assert listener.receive("POST", "/", *signed(TENANT)) == 204
    assert lookups.calls == 0  # the tenant's secret verified it: nothing looked up
    assert listener.receive("POST", "/", *signed(ENDPOINT, "msg_2")) == 204
    assert lookups.calls == 1 and "signature verified (endpoint ep_1's secret)" in said[-1]
    assert listener.receive("POST", "/", *signed(ENDPOINT, "msg_3")) == 204
    assert lookups.calls == 1  # known now


def test_forgeries_are_refused_and_cost_one_lookup_per_interval() -> None:
    said: list[str] = []
    lookups, now = Lookups({"ep_1": ENDPOINT}), [100.0]
    listener = Listener(TENANT, said.append, endpoint_secrets=lookups, clock=lambda: now[0])

    for n in range(5):
        assert listener.receive("POST", "/", *signed(whsec(), f"msg_f{n}")) == 401
    assert lookups.calls == 1 and "signature NOT verified" in said[-1]
    now[0] += Listener.LOOKUP_EVERY_S
    assert listener.receive("POST", "/", *signed(whsec(), "msg_late")) == 401
    assert lookups.calls == 2


def test_without_a_lookup_only_the_given_secret_verifies() -> None:
    listener = Listener(TENANT, [].append)

    assert listener.receive("POST", "/", *signed(ENDPOINT)) == 401
    assert listener.receive("POST", "/", *signed(TENANT)) == 204


def test_a_lookup_that_fails_keeps_the_secrets_already_known() -> None:
    lookups, now = Lookups({"ep_1": ENDPOINT}), [100.0]
    listener = Listener(TENANT, [].append, endpoint_secrets=lookups, clock=lambda: now[0])
    assert listener.receive("POST", "/", *signed(ENDPOINT)) == 204

    listener._endpoint_secrets = lambda: None  # the API could not list the endpoints
    now[0] += Listener.LOOKUP_EVERY_S
    assert listener.receive("POST", "/", *signed(whsec(), "msg_forged")) == 401  # looked up: nothing new
    assert listener.receive("POST", "/", *signed(ENDPOINT, "msg_2")) == 204  # ep_1's secret still known


async def _deliver(listener: Listener, headers: dict[str, str], body: bytes) -> int:
    sent: list[dict] = []
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await listener(scope, receive, send)
    return int(sent[0]["status"])


def test_the_asgi_app_verifies_off_its_event_loop() -> None:
    import asyncio
    import threading

    threads: list[str] = []

    def look_up() -> dict[str, str]:
        threads.append(threading.current_thread().name)
        return {"ep_1": ENDPOINT}

    listener = Listener(TENANT, [].append, endpoint_secrets=look_up)
    # a loop of its own, never made the thread's current one: asyncio.run would replace (and so drop,
    # unclosed) the loop an earlier test's Mangum handler left as this thread's
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(_deliver(listener, *signed(ENDPOINT))) == 204
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    assert threads and threads[0] != threading.main_thread().name
