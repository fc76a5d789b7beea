"""The verifying webhook receiver of the demo and the e2e tests: a delivery that is about no job (an
endpoint.disabled event) is kept and found by what it is about, never mistaken for a job's."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from maskgate.webhooks.signing import new_secret
from maskgate_local.demo.receiver import WebhookReceiver


async def _post_all(
    receiver: WebhookReceiver, secret: str, messages: dict[str, dict[str, object]]
) -> list[int]:
    transport = httpx.ASGITransport(app=receiver)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        codes = []
        for msg_id, payload in messages.items():
            body = json.dumps(payload)
            now = datetime.now(UTC)
            headers = {
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": Webhook(secret).sign(msg_id, now, body),
            }
            codes.append((await client.post("/", content=body, headers=headers)).status_code)
        return codes


def test_an_event_about_no_job_is_kept_and_not_mistaken_for_a_jobs() -> None:
    secret = new_secret()
    receiver = WebhookReceiver(secret=secret)
    disabled = {"type": "endpoint.disabled", "data": {"endpoint_id": "ep_0123456789abcdef"}}
    job = {"type": "segmentation.succeeded", "data": {"id": "seg_X", "status": "succeeded"}}
    messages = {"msg_ep_disabled": disabled, "msg_X_succeeded": job}
    # a loop of its own, never made the thread's current one: asyncio.run would replace (and so drop,
    # unclosed) the loop an earlier test's Mangum handler left as this thread's
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(_post_all(receiver, secret, messages)) == [204, 204]
    finally:
        loop.close()
    assert [d.payload for d in receiver.for_job("seg_X")] == [job]
    assert receiver.wait_for("seg_X", timeout=1).payload == job
    found = receiver.wait_until(lambda p: p["type"] == "endpoint.disabled", timeout=1)
    assert found.verified and found.payload == disabled
