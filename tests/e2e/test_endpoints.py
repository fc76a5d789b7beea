"""Registered webhook endpoints on the local stack: fan-out by event type, auto-disable on 410, throttling,
recovery after an outage, secret rotation, and the attempt log, each seen by real HTTP receivers on
free loopback ports that verify every delivery with ``standardwebhooks``.

Each test has a tenant of its own (endpoints are per tenant), so the stack's other tests and the other
tests here never see its events. The local stack retries a failed delivery every second, seven times,
and disables an endpoint that has failed for 30 seconds."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from maskgate.stores.tenants import TenantStore
from maskgate_local.cli.main import main
from maskgate_local.demo.receiver import Delivery, WebhookReceiver
from maskgate_local.demo.sample import PANEL
from maskgate_local.stack.servers import RunningServer, serve_in_thread
from tests.e2e.conftest import TIMEOUT, Stack
from tests.support.images import unique_scene

pytestmark = pytest.mark.e2e
BOX = {"x_min": PANEL[0], "y_min": PANEL[1], "x_max": PANEL[2] + 1, "y_max": PANEL[3] + 1}
PLACEHOLDER = "whsec_" + base64.b64encode(b"set once the endpoint exists").decode()
# A throttled endpoint's sends take turns 1/rate apart (the turn is taken, then the body is signed and
# sent); what the receiver's clock sees adds each send's own time to connect and arrive, which varies
# by some tens of milliseconds on a busy machine. So three arrivals may fall into one second by that
# much, never more: the window checked is 1 s minus this allowance.
THROTTLE_JITTER_S = 0.25


def msg_id(job_id: str, event: str) -> str:
    """The webhook-id of a job's event (``msg_<job ulid>_<succeeded|failed|canceled>``)."""
    return f"msg_{job_id.removeprefix('seg_')}_{event.rsplit('.', 1)[-1]}"


@dataclass
class Receiver:
    """A verifying receiver on a port of its own and the endpoint registered for it."""

    hooks: WebhookReceiver
    url: str
    endpoint: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.endpoint["id"])

    def verified(self) -> list[Delivery]:
        return [d for d in list(self.hooks.deliveries) if d.verified]

    def ids(self) -> list[str]:
        return [d.headers["webhook-id"] for d in self.verified()]

    def wait_ids(self, wanted: set[str], *, timeout: float = 60.0) -> None:
        """Until every webhook-id in ``wanted`` has arrived verified."""
        self.hooks.wait_until(lambda _: wanted <= set(self.ids()), timeout=timeout, what=str(sorted(wanted)))


@dataclass
class Tenant:
    stack: Stack
    key: str
    capsys: pytest.CaptureFixture[str]
    servers: list[RunningServer]

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.stack.api(method, path, key=self.key, **kwargs)

    def receiver(self, *, status: int = 204, **fields: Any) -> Receiver:
        """Start a receiver answering ``status`` and register an endpoint for it with ``fields``."""
        hooks = WebhookReceiver(secret=PLACEHOLDER, status=status)
        server = serve_in_thread(hooks)
        self.servers.append(server)
        url = f"{server.url}/hooks"
        created = self.api("POST", "/v1/webhook-endpoints", json={"url": url, **fields})
        assert created.status_code == 201, created.text
        hooks.secret = created.json()["secret"]
        return Receiver(hooks, url, created.json())

    def submit(self) -> str:
        """A job that succeeds (no webhook_url of its own: only the endpoints hear of it)."""
        image = "data:image/png;base64," + base64.b64encode(unique_scene()).decode()
        response = self.api("POST", "/v1/segmentations", json={"image": image, "box_prompts": [BOX]})
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def upload(self, content: bytes | None) -> str:
        """A direct upload's job; ``content`` is POSTed to its form (None: nothing, the job waits)."""
        registered = self.api(
            "POST",
            "/v1/uploads",
            json={"filename": "scene.png", "content_type": "image/png", "box_prompts": [BOX]},
        )
        assert registered.status_code == 201, registered.text
        if content is not None:
            form = registered.json()["upload"]
            posted = httpx.post(
                form["url"],
                data=form["fields"],
                files={"file": ("scene.png", content, "image/png")},
                timeout=TIMEOUT,
            )
            assert posted.status_code in (200, 201, 204), posted.text
        return str(registered.json()["id"])

    def cli(self, action: str, *args: str) -> tuple[int, str, str]:
        """``maskgate endpoints <action> …`` in-process: (exit code, out, err)."""
        self.capsys.readouterr()
        code = main(
            ["endpoints", action, "--api-url", self.stack.ready["api_url"], "--api-key", self.key, *args]
        )
        captured = self.capsys.readouterr()
        assert self.key not in captured.out + captured.err
        return code, captured.out, captured.err


@pytest.fixture
def tenant(stack: Stack, capsys: pytest.CaptureFixture[str]) -> Iterator[Tenant]:
    name = f"e2e-endpoints-{uuid.uuid4().hex[:8]}"
    key = TenantStore(table=stack.ready["table"], client=stack.aws("dynamodb")).create_key(name).key
    made = Tenant(stack, key, capsys, [])
    try:
        yield made
    finally:
        for server in made.servers:
            server.stop()


def until(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """``check()`` once it is truthy, polling; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout} s")
        time.sleep(0.2)
    return found


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def field(out: str, name: str) -> str:
    found = re.search(rf"^{name} +(\S.*)$", out, re.MULTILINE)
    assert found, out
    return found.group(1)


def test_each_endpoint_sees_exactly_the_event_types_it_asked_for(tenant: Tenant) -> None:
    successes = tenant.receiver(event_types=["segmentation.succeeded"])
    endings = tenant.receiver(event_types=["segmentation.failed", "segmentation.canceled"])

    succeeded = tenant.submit()
    failed = tenant.upload(b"%PDF-1.7 not an image")  # the upload handler fails it: invalid_image
    canceled = tenant.upload(None)
    assert tenant.api("DELETE", f"/v1/segmentations/{canceled}").status_code == 200

    successes.wait_ids({msg_id(succeeded, "succeeded")})
    endings.wait_ids({msg_id(failed, "failed"), msg_id(canceled, "canceled")})
    time.sleep(1.0)  # a wrong fan-out would have gone out with the right one: give it time to show
    assert successes.ids() == [msg_id(succeeded, "succeeded")]
    assert sorted(endings.ids()) == sorted([msg_id(failed, "failed"), msg_id(canceled, "canceled")])
    assert all(d.verified for r in (successes, endings) for d in r.hooks.deliveries)
    [failure] = [
        d.payload for d in endings.verified() if d.payload and d.payload["type"] == "segmentation.failed"
    ]
    assert failure["data"]["id"] == failed and failure["data"]["error"]["type"] == "invalid_image"


def test_an_endpoint_answering_410_is_disabled_and_the_others_are_told_and_keep_receiving(
    tenant: Tenant,
) -> None:
    gone = tenant.receiver(status=410, event_types=["segmentation.succeeded"])
    keeper = tenant.receiver(event_types=["segmentation.succeeded"])
    watcher = tenant.receiver(event_types=["endpoint.disabled"])

    first = tenant.submit()
    keeper.wait_ids({msg_id(first, "succeeded")})
    told = watcher.hooks.wait_until(lambda p: p["type"] == "endpoint.disabled", timeout=30, what="disabled")
    assert told.payload is not None
    assert told.payload["data"]["endpoint_id"] == gone.id and told.payload["data"]["url"] == gone.url
    assert told.payload["data"]["reason"] == "the endpoint answered 410 Gone"
    shown = tenant.api("GET", f"/v1/webhook-endpoints/{gone.id}").json()
    assert shown["enabled"] is False and shown["disabled_reason"] == "the endpoint answered 410 Gone"
    assert when(shown["disabled_at"]) == when(told.payload["data"]["disabled_at"])
    assert shown["stats"]["state"] == "disabled" and shown["stats"]["last_error"] == "410"
    code, out, _ = tenant.cli("show", gone.id)
    assert code == 0 and field(out, "state").endswith("the endpoint answered 410 Gone")
    assert field(out, "health") == "disabled" and field(out, "last error") == "410"

    second = tenant.submit()
    keeper.wait_ids({msg_id(second, "succeeded")})
    assert gone.ids() == [msg_id(first, "succeeded")]  # one attempt, no retry of a 410, nothing after
    assert watcher.ids() == [told.headers["webhook-id"]]  # only endpoint.disabled, once
    assert tenant.api("GET", f"/v1/webhook-endpoints/{keeper.id}").json()["enabled"] is True


def test_a_throttled_endpoint_gets_every_event_never_faster_than_its_rate(tenant: Tenant) -> None:
    throttled = tenant.receiver(rate_limit_per_second=2)
    jobs = [tenant.submit() for _ in range(8)]
    wanted = {msg_id(job, "succeeded") for job in jobs}

    throttled.wait_ids(wanted, timeout=90)
    time.sleep(1.0)  # nothing more comes: each event once
    assert sorted(throttled.ids()) == sorted(wanted)
    assert all(d.verified for d in throttled.hooks.deliveries)
    arrivals = sorted(d.received_at for d in throttled.verified())
    # never more than 2 in any 1-second span: the 1st and 3rd of any three are at least 1 s apart
    spans = [later - earlier for earlier, later in zip(arrivals, arrivals[2:], strict=False)]
    assert min(spans) >= 1.0 - THROTTLE_JITTER_S, spans


def test_an_endpoint_back_from_an_outage_gets_everything_on_recover(tenant: Tenant) -> None:
    started = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")  # floored
    flaky = tenant.receiver(status=503)
    jobs = [tenant.submit() for _ in range(3)]
    wanted = {msg_id(job, "succeeded") for job in jobs}

    def exhausted() -> bool:
        """Every message's last attempt failed and nothing retries it: its delivery unit ran out."""
        page = tenant.api("GET", f"/v1/webhook-endpoints/{flaky.id}/attempts", params={"limit": 100}).json()
        last: dict[str, dict[str, Any]] = {}
        for attempt in page["data"]:  # newest first
            last.setdefault(attempt["webhook_id"], attempt)
        return set(last) == wanted and all(a["next_attempt_at"] is None for a in last.values())

    until(exhausted, timeout=25, what="every delivery unit to run out")  # inside the 30 s disable window
    down = len(flaky.hooks.deliveries)
    assert set(flaky.ids()) == wanted and down == 3 * 8  # the first attempt and seven retries each
    flaky.hooks.status = 204
    code, out, _ = tenant.cli("recover", flaky.id, "--since", started)
    assert code == 0 and out.startswith(f"resending 3 messages to {flaky.id}"), out

    flaky.hooks.wait_until(lambda _: wanted <= set(flaky.ids()[down:]), timeout=30, what="recovered")
    time.sleep(1.0)
    assert all(d.verified for d in flaky.hooks.deliveries)
    assert set(flaky.ids()) == wanted  # the jobs' own webhook-ids and nothing else
    assert sorted(flaky.ids()[down:]) == sorted(wanted)  # each once more, now answered 204
    bodies = {d.headers["webhook-id"]: d.body for d in flaky.hooks.deliveries[:down]}
    assert all(bodies[d.headers["webhook-id"]] == d.body for d in flaky.hooks.deliveries[down:])
    shown = tenant.api("GET", f"/v1/webhook-endpoints/{flaky.id}").json()
    assert shown["enabled"] is True and shown["stats"]["state"] == "healthy"

    code, out, _ = tenant.cli("recover", flaky.id, "--since", started)
    assert (code, out.split(" (")[0]) == (0, f"resending 0 messages to {flaky.id}")  # nothing failed last
    code, _, err = tenant.cli("recover", flaky.id, "--since", "yesterday")
    assert code == 2 and "RFC 3339" in err


def test_after_rotate_secret_a_delivery_verifies_with_the_old_and_the_new_secret(tenant: Tenant) -> None:
    rotor = tenant.receiver()
    old = rotor.hooks.secret
    code, out, _ = tenant.cli("rotate-secret", rotor.id)
    new = field(out, "secret")
    assert code == 0 and new.startswith("whsec_") and new != old

    job = tenant.submit()
    rotor.wait_ids({msg_id(job, "succeeded")})  # the receiver verified it with the old secret
    [delivery] = rotor.verified()
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(delivery.body, delivery.headers)["data"]["id"] == job
    assert Webhook(old).verify(delivery.body, delivery.headers)["data"]["id"] == job


def test_attempts_show_the_real_status_codes_and_resend_sends_the_same_message(tenant: Tenant) -> None:
    hooks = tenant.receiver()
    hooks.hooks.script = [503]  # the first attempt; its delivery unit's retry a second later gets 204
    job = tenant.submit()
    webhook_id = msg_id(job, "succeeded")
    until(lambda: len(hooks.verified()) == 2, timeout=60, what="the retry")

    def rows(out: str) -> list[list[str]]:
        return [line.split("  ") for line in out.splitlines() if webhook_id in line]

    def result(row: list[str]) -> str:
        return [cell.strip() for cell in row if cell.strip()][3]  # after time, webhook-id, event

    code, out, _ = tenant.cli("attempts", hooks.id)
    assert code == 0 and out.splitlines()[0].split()[:3] == ["time", "webhook-id", "event"], out
    assert [result(r) for r in rows(out)] == ["204", "503"]  # newest first
    assert "segmentation.succeeded" in out and "more:" not in out

    code, out, _ = tenant.cli("attempts", hooks.id, "--status", "failed")
    [failed] = rows(out)
    assert code == 0 and result(failed) == "503"
    assert re.search(r"\d\d:\d\d:\d\d UTC$", out.splitlines()[1])  # when it was tried again

    code, out, _ = tenant.cli("attempts", hooks.id, "--limit", "1")
    [newest] = rows(out)
    cursor = out.splitlines()[-1].removeprefix("more: --cursor ")
    assert code == 0 and result(newest) == "204" and out.splitlines()[-1].startswith("more: --cursor ")
    code, out, _ = tenant.cli("attempts", hooks.id, "--limit", "1", "--cursor", cursor)
    [older] = rows(out)
    assert code == 0 and result(older) == "503" and "more:" not in out

    code, out, _ = tenant.cli("show", hooks.id)
    assert code == 0 and field(out, "last 24 h") == "2 attempts, 50.0 % succeeded"
    assert field(out, "last error") == "503" and field(out, "health") == "healthy"
    assert re.fullmatch(r"p50 \d+ ms, p95 \d+ ms", field(out, "latency"))

    code, out, _ = tenant.cli("resend", hooks.id, webhook_id)
    assert (code, out.strip()) == (0, f"resending {webhook_id} to {hooks.id}")
    until(lambda: len(hooks.verified()) == 3, timeout=30, what="the resend")
    first, retry, resent = hooks.verified()
    assert first.body == retry.body == resent.body and set(hooks.ids()) == {webhook_id}

    code, _, err = tenant.cli("resend", hooks.id, "msg_nothing")
    assert code == 2 and err.startswith("not_found: ")
    code, _, err = tenant.cli("attempts", "ep_0000000000000000")
    assert code == 2 and err.startswith("not_found: ")
