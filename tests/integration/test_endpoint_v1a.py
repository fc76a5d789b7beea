"""v1a endpoints on moto: the notify handler sends a job's event to an endpoint that chose
``signature: "v1a"``, signed with its Ed25519 key, and the signature is checked with PyNaCl (libsodium),
an Ed25519 that is not the ``cryptography`` maskgate signs with: it verifies with the endpoint's
``public_key``, a changed body or timestamp does not, and during a rotation both key pairs sign."""

from __future__ import annotations

import base64

import httpx
import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from standardwebhooks import Webhook

from maskgate import clients
from maskgate.api.views import endpoint_secret
from maskgate.contracts.endpoints import Endpoint, EndpointCreate, EndpointUpdate
from maskgate.contracts.job import JobError, JobStatus, utcnow
from maskgate.webhooks.sender import WebhookSender
from tests.integration.conftest import Aws
from tests.integration.seeds import queued_job
from tests.support.artefacts import LambdaContext, load_handler
from tests.support.fakes import Recording

FAILED = JobError(type="timeout", message="slow")


@pytest.fixture
def received(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Recording:
    """Every receiver answers 204; every request is kept."""
    recording = Recording(lambda request: httpx.Response(204))
    sender = WebhookSender(local=True, transport=httpx.MockTransport(recording))
    monkeypatch.setattr(clients, "webhook_sender", lambda: sender)
    return recording


def endpoint(aws: Aws, path: str, **fields: object) -> Endpoint:
    return clients.endpoint_store().create(
        aws.tenant,
        EndpointCreate(url=f"http://127.0.0.1:8765{path}", **fields),  # type: ignore[arg-type]
    )


def to(recording: Recording, path: str) -> list[httpx.Request]:
    return [r for r in recording.requests if r.url.path == path]


def notify(job_id: str) -> str:
    return str(load_handler("notify").handler({"job_id": job_id}, LambdaContext())["outcome"])


def signatures(request: httpx.Request) -> list[tuple[str, bytes]]:
    """The (version, raw signature) entries of its webhook-signature."""
    entries = [entry.partition(",") for entry in request.headers["webhook-signature"].split(" ")]
    return [(version, base64.b64decode(encoded)) for version, _, encoded in entries]


def verifies(
    public_key: str | None, request: httpx.Request, *, body: bytes | None = None, timestamp: str | None = None
) -> bool:
    """PyNaCl's verdict: one v1a signature of the request verifies with the whpk_ key over
    ``{webhook-id}.{webhook-timestamp}.{body}`` (a body or timestamp given instead: a tampered one)."""
    assert public_key is not None and public_key.startswith("whpk_")
    key = VerifyKey(base64.b64decode(public_key.removeprefix("whpk_"), validate=True))
    signed = (
        f"{request.headers['webhook-id']}.{timestamp or request.headers['webhook-timestamp']}.".encode()
        + (request.content if body is None else body)
    )
    for version, signature in signatures(request):
        if version != "v1a":
            continue
        try:
            key.verify(signed, signature)
        except BadSignatureError:
            continue
        return True
    return False


def test_a_v1a_endpoint_gets_the_event_signed_with_its_key_and_pynacl_verifies_it(
    aws: Aws, received: Recording
) -> None:
    ed25519 = endpoint(aws, "/ed25519", signature="v1a")
    hmac = endpoint(aws, "/hmac")
    job = queued_job(aws, status=JobStatus.FAILED, error=FAILED)

    assert notify(job.id) == "delivered"

    [request] = to(received, "/ed25519")
    [(version, signature)] = signatures(request)
    assert version == "v1a" and len(signature) == 64
    assert verifies(ed25519.public_key, request)
    [own] = to(received, "/hooks")
    assert request.content == own.content and request.headers["webhook-id"] == own.headers["webhook-id"]
    # the v1 endpoint beside it is signed as before, with its own secret
    [other] = to(received, "/hmac")
    assert Webhook(hmac.secret).verify(other.content, dict(other.headers))["type"] == "segmentation.failed"
    assert [v for v, _ in signatures(other)] == ["v1"]
    assert not verifies(ed25519.public_key, other)
    deliveries = clients.job_store().get(job.id).deliveries
    assert {(d.endpoint_id, d.outcome) for d in deliveries if d.endpoint_id} == {
        (ed25519.id, "delivered"),
        (hmac.id, "delivered"),
    }


def test_a_changed_body_or_timestamp_does_not_verify(aws: Aws, received: Recording) -> None:
    ed25519 = endpoint(aws, "/ed25519", signature="v1a")
    notify(queued_job(aws, status=JobStatus.FAILED, error=FAILED).id)
    [request] = to(received, "/ed25519")
    timestamp = int(request.headers["webhook-timestamp"])

    assert verifies(ed25519.public_key, request)
    assert not verifies(ed25519.public_key, request, body=request.content.replace(b"failed", b"succeeded"))
    assert not verifies(ed25519.public_key, request, body=request.content + b"\n")
    assert not verifies(ed25519.public_key, request, timestamp=str(timestamp + 1))
    assert not verifies(ed25519.public_key, request, timestamp=str(timestamp - 300))
    assert not verifies(endpoint(aws, "/another", signature="v1a").public_key, request)


def test_during_a_rotation_both_key_pairs_sign_and_each_public_key_verifies(
    aws: Aws, received: Recording
) -> None:
    before = endpoint(aws, "/rotating", signature="v1a")
    after = clients.endpoint_store().rotate_secret(aws.tenant, before.id)
    assert after.public_key != before.public_key and after.previous_secret == before.secret

    notify(queued_job(aws, status=JobStatus.FAILED, error=FAILED).id)

    [request] = to(received, "/rotating")
    assert [v for v, _ in signatures(request)] == ["v1a", "v1a"]
    assert verifies(after.public_key, request) and verifies(before.public_key, request)
    tampered = request.content + b" "
    assert not verifies(after.public_key, request, body=tampered)
    assert not verifies(before.public_key, request, body=tampered)


@pytest.mark.parametrize(("first", "then"), [("v1", "v1a"), ("v1a", "v1")])
def test_switching_the_scheme_signs_with_both_until_the_overlap_ends(
    aws: Aws, received: Recording, first: str, then: str
) -> None:
    before = endpoint(aws, "/switching", signature=first)
    after = clients.endpoint_store().update(aws.tenant, before.id, EndpointUpdate(signature=then))  # type: ignore[arg-type]
    assert after.signature == then and after.previous_secret == before.secret
    assert (after.public_key is None) == (then == "v1") and after.secret.startswith(
        "whsec_" if then == "v1" else "whsk_"
    )

    notify(queued_job(aws, status=JobStatus.FAILED, error=FAILED).id)

    [request] = to(received, "/switching")
    assert sorted(v for v, _ in signatures(request)) == ["v1", "v1a"]
    hmac, ed25519 = (before, after) if first == "v1" else (after, before)
    assert (
        Webhook(hmac.secret).verify(request.content, dict(request.headers))["type"] == "segmentation.failed"
    )
    assert verifies(ed25519.public_key, request)
    shown = endpoint_secret(after, now=utcnow())
    assert shown.previous_secret_valid_until == after.previous_until
    assert shown.previous_public_key == (before.public_key if first == "v1a" else None)
    unchanged = clients.endpoint_store().update(aws.tenant, before.id, EndpointUpdate(signature=then))  # type: ignore[arg-type]
    assert unchanged.secret == after.secret  # the scheme it has already: no new key


def test_endpoint_disabled_is_signed_for_a_v1a_watcher_with_its_key(aws: Aws, received: Recording) -> None:
    gone = endpoint(aws, "/gone")
    watcher = endpoint(aws, "/watcher", signature="v1a", event_types=["endpoint.disabled"])
    received.answer = lambda request: httpx.Response(410 if request.url.path == "/gone" else 204)

    notify(queued_job(aws, status=JobStatus.FAILED, error=FAILED).id)

    assert not clients.endpoint_store().get(aws.tenant, gone.id).enabled
    [told] = to(received, "/watcher")
    assert b'"endpoint.disabled"' in told.content
    assert [v for v, _ in signatures(told)] == ["v1a"]
    assert verifies(watcher.public_key, told)
    assert not verifies(watcher.public_key, told, body=told.content.replace(gone.id.encode(), b"ep_0"))
