"""maskgate.webhooks (signing, body, sender): Standard Webhooks v1 signing, mask tokens, the event
body and one delivery attempt. Signatures are checked with the ``standardwebhooks`` library and with an
HMAC computed here; deliveries go through ``httpx.MockTransport``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError
from standardwebhooks import Webhook, WebhookVerificationError

from maskgate.contracts.job import DeliveryAttempt, Job, JobError, JobStatus, Mask
from maskgate.contracts.prompts import MAX_METADATA_BYTES, Prompts
from maskgate.ids import new_job_id
from maskgate.webhooks.body import build_body, event_type, webhook_id
from maskgate.webhooks.sender import MAX_RESPONSE_BYTES, WebhookSender
from maskgate.webhooks.signing import mask_token, mask_token_valid, new_secret, sign, signature_header
from tests.support.fakes import Recording

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
API = "https://api.example.com/"
HOOK = "http://127.0.0.1:9999/hooks"


def _expected_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


# --- signing -----------------------------------------------------------------------------------


def test_sign_matches_independent_hmac():
    body = b'{"type":"segmentation.succeeded"}'

    assert sign(SECRET, msg_id="msg_1", timestamp=1_700_000_000, body=body) == _expected_signature(
        SECRET, "msg_1", 1_700_000_000, body
    )


def test_sign_matches_the_standard_webhooks_reference_vector():
    # the example of the Standard Webhooks specification
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'

    signature = sign(secret, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330, body=body)

    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_sign_verifies_with_standardwebhooks():
    body = '{"data":{"id":"seg_x","metadata":{"note":"café ☕"}}}'.encode()
    timestamp = int(time.time())

    signature = sign(SECRET, msg_id="msg_a", timestamp=timestamp, body=body)

    assert Webhook(SECRET).verify(body, _headers("msg_a", timestamp, signature))["data"]["id"] == "seg_x"


def test_sign_fails_verification_under_another_secret():
    body = b"{}"
    timestamp = int(time.time())
    signature = sign(SECRET, msg_id="msg_a", timestamp=timestamp, body=body)

    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(body, _headers("msg_a", timestamp, signature))


def test_sign_fails_verification_of_a_changed_body():
    timestamp = int(time.time())
    signature = sign(SECRET, msg_id="msg_a", timestamp=timestamp, body=b'{"a":1}')

    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b'{"a":2}', _headers("msg_a", timestamp, signature))


def test_signature_header_with_one_secret_is_one_signature():
    header = signature_header([SECRET], msg_id="m", timestamp=5, body=b"{}")

    assert header == _expected_signature(SECRET, "m", 5, b"{}")


def test_signature_header_during_rotation_has_two_space_separated_signatures():
    header = signature_header([SECRET, OTHER_SECRET], msg_id="m", timestamp=5, body=b"{}")

    assert header.split(" ") == [
        _expected_signature(SECRET, "m", 5, b"{}"),
        _expected_signature(OTHER_SECRET, "m", 5, b"{}"),
    ]


@pytest.mark.parametrize("receiver_secret", [SECRET, OTHER_SECRET])
def test_signature_header_during_rotation_verifies_under_either_secret(receiver_secret):
    body = b'{"type":"segmentation.failed"}'
    timestamp = int(time.time())
    header = signature_header([SECRET, OTHER_SECRET], msg_id="msg_r", timestamp=timestamp, body=body)

    assert Webhook(receiver_secret).verify(body, _headers("msg_r", timestamp, header))


def test_signature_header_during_rotation_fails_under_a_third_secret():
    body = b"{}"
    timestamp = int(time.time())
    header = signature_header([SECRET, OTHER_SECRET], msg_id="msg_r", timestamp=timestamp, body=body)

    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, _headers("msg_r", timestamp, header))


# --- secrets and ids ---------------------------------------------------------------------------


def test_new_secret_is_whsec_prefixed_base64_of_at_least_24_bytes():
    secret = new_secret()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24


def test_new_secret_is_random():
    assert len({new_secret() for _ in range(20)}) == 20


def test_new_secret_is_accepted_by_standardwebhooks():
    secret = new_secret()
    timestamp = int(time.time())

    header = sign(secret, msg_id="m", timestamp=timestamp, body=b"{}")

    assert Webhook(secret).verify(b"{}", _headers("m", timestamp, header)) == {}


def test_webhook_id_is_stable_per_job_and_event():
    job_id = new_job_id(NOW)

    assert webhook_id(job_id, "segmentation.succeeded") == webhook_id(job_id, "segmentation.succeeded")


def test_webhook_id_differs_per_event():
    job_id = new_job_id(NOW)

    assert webhook_id(job_id, "segmentation.succeeded") != webhook_id(job_id, "segmentation.canceled")


def test_webhook_id_differs_per_job():
    assert webhook_id(new_job_id(NOW), "segmentation.failed") != webhook_id(
        new_job_id(NOW), "segmentation.failed"
    )


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (JobStatus.SUCCEEDED, "segmentation.succeeded"),
        (JobStatus.FAILED, "segmentation.failed"),
        (JobStatus.CANCELED, "segmentation.canceled"),
    ],
)
def test_event_type_follows_the_final_status(status, event):
    assert event_type(status) == event


# --- mask tokens -------------------------------------------------------------------------------

JOB_ID = "seg_01JDQ0000000000000000000AB"


def test_mask_token_valid_accepts_a_fresh_token():
    token = mask_token(SECRET, job_id=JOB_ID, index=2, expires=2_000)

    assert mask_token_valid(token, [SECRET], job_id=JOB_ID, index=2, now=1_000)


def test_mask_token_valid_accepts_a_token_of_the_previous_secret_during_rotation():
    token = mask_token(OTHER_SECRET, job_id=JOB_ID, index=0, expires=2_000)

    assert mask_token_valid(token, [SECRET, OTHER_SECRET], job_id=JOB_ID, index=0, now=1_000)


def test_mask_token_valid_refuses_an_expired_token():
    token = mask_token(SECRET, job_id=JOB_ID, index=0, expires=2_000)

    assert not mask_token_valid(token, [SECRET], job_id=JOB_ID, index=0, now=2_000.5)


def test_mask_token_valid_refuses_another_job():
    token = mask_token(SECRET, job_id=JOB_ID, index=0, expires=2_000)

    assert not mask_token_valid(token, [SECRET], job_id=new_job_id(NOW), index=0, now=1_000)


def test_mask_token_valid_refuses_another_mask_index():
    token = mask_token(SECRET, job_id=JOB_ID, index=0, expires=2_000)

    assert not mask_token_valid(token, [SECRET], job_id=JOB_ID, index=1, now=1_000)


def test_mask_token_valid_refuses_another_secret():
    token = mask_token(OTHER_SECRET, job_id=JOB_ID, index=0, expires=2_000)

    assert not mask_token_valid(token, [SECRET], job_id=JOB_ID, index=0, now=1_000)


def test_mask_token_valid_refuses_an_extended_expiry():
    token = mask_token(SECRET, job_id=JOB_ID, index=0, expires=2_000)
    _, _, mac = token.partition(".")

    assert not mask_token_valid(f"9999999999.{mac}", [SECRET], job_id=JOB_ID, index=0, now=1_000)


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "2000", "2000.", ".abc", "soon.abcdef", "-2000.abc", "2000.abc", "2e3.abc", " 2000.abc"],
)
def test_mask_token_valid_refuses_garbage(token):
    assert not mask_token_valid(token, [SECRET], job_id=JOB_ID, index=0, now=1_000)


def test_mask_token_is_url_safe():
    token = mask_token(SECRET, job_id=JOB_ID, index=0, expires=2_000)

    assert set(token) <= set("0123456789.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_=")


def test_mask_token_valid_refuses_non_ascii_garbage():
    assert not mask_token_valid("9999999999.é", [SECRET], job_id=JOB_ID, index=0, now=1_000)


def test_mask_token_valid_refuses_unicode_digit_expiry():
    assert not mask_token_valid("².abc", [SECRET], job_id=JOB_ID, index=0, now=1_000)


def test_mask_token_valid_refuses_huge_expiry():
    assert not mask_token_valid("9" * 5000 + ".abc", [SECRET], job_id=JOB_ID, index=0, now=1_000)


# --- the event body ----------------------------------------------------------------------------


def _job(status: JobStatus, **fields: object) -> Job:
    values: dict[str, object] = {
        "id": new_job_id(NOW),
        "tenant": "tenant-1",
        "status": status,
        "source": "api",
        "request": Prompts(prompt="the cat", metadata={"order": "42", "note": "café"}),
        "created_at": NOW,
        "updated_at": NOW,
        "webhook_url": HOOK,
    }
    values.update(fields)
    return Job.model_validate(values)


def _mask(index: int) -> Mask:
    return Mask(
        index=index,
        key=f"results/seg_x/mask-{index}.png",
        format="png",
        content_type="image/png",
        size=1234,
        width=640,
        height=480,
    )


def _body(job: Job, **overrides: object) -> str:
    params: dict[str, object] = {"api_url": API, "secret": SECRET, "now": NOW, "link_seconds": 3600}
    params.update(overrides)
    return build_body(job, **params)  # type: ignore[arg-type]


def test_build_body_succeeded_has_the_contract_shape():
    job = _job(JobStatus.SUCCEEDED, masks=[_mask(0), _mask(1)])

    event = json.loads(_body(job))

    assert set(event) == {"type", "timestamp", "data"}
    assert event["type"] == "segmentation.succeeded"
    assert set(event["data"]) == {
        "id",
        "status",
        "error",
        "metadata",
        "masks",
        "found",
        "instance_count",
        "links",
    }
    assert event["data"]["id"] == job.id
    assert event["data"]["status"] == "succeeded"
    assert event["data"]["error"] is None
    assert event["data"]["metadata"] == {"order": "42", "note": "café"}
    assert event["data"]["links"] == {"self": f"https://api.example.com/v1/segmentations/{job.id}"}


def test_build_body_succeeded_lists_masks_with_url_and_format():
    job = _job(JobStatus.SUCCEEDED, masks=[_mask(0), _mask(1)])

    masks = json.loads(_body(job))["data"]["masks"]

    assert [m["format"] for m in masks] == ["png", "png"]
    for index, mask in enumerate(masks):
        assert mask["url"].startswith(
            f"https://api.example.com/v1/segmentations/{job.id}/masks/{index}?token="
        )
        assert (mask["width"], mask["height"], mask["size"]) == (640, 480, 1234)
        assert mask["content_type"] == "image/png"


def test_build_body_mask_links_carry_a_token_valid_until_now_plus_link_seconds():
    job = _job(JobStatus.SUCCEEDED, masks=[_mask(0), _mask(1)])

    masks = json.loads(_body(job, link_seconds=600))["data"]["masks"]

    token = httpx.URL(masks[1]["url"]).params["token"]
    expires = NOW.timestamp() + 600
    assert mask_token_valid(token, [SECRET], job_id=job.id, index=1, now=expires)
    assert not mask_token_valid(token, [SECRET], job_id=job.id, index=1, now=expires + 1)
    assert not mask_token_valid(token, [SECRET], job_id=job.id, index=0, now=expires)


def test_build_body_timestamp_is_iso_8601_utc():
    event = json.loads(_body(_job(JobStatus.SUCCEEDED, masks=[_mask(0)])))

    assert event["timestamp"].endswith("Z")
    assert datetime.fromisoformat(event["timestamp"]) == NOW


def test_build_body_failed_carries_the_error_and_no_masks():
    job = _job(JobStatus.FAILED, error=JobError(type="upstream_failed", message="the prediction failed"))

    event = json.loads(_body(job))

    assert event["type"] == "segmentation.failed"
    assert event["data"]["status"] == "failed"
    assert event["data"]["error"] == {"type": "upstream_failed", "message": "the prediction failed"}
    assert event["data"]["masks"] == []


def test_build_body_canceled_is_a_canceled_event():
    job = _job(JobStatus.CANCELED, error=JobError(type="canceled", message="canceled by the caller"))

    assert json.loads(_body(job))["type"] == "segmentation.canceled"


def test_build_body_without_request_has_empty_metadata():
    job = _job(JobStatus.FAILED, request=None, error=JobError(type="missing_prompt", message="no prompt"))

    assert json.loads(_body(job))["data"]["metadata"] == {}


def test_build_body_is_byte_identical_when_rebuilt():
    job = _job(JobStatus.SUCCEEDED, masks=[_mask(0)])

    assert _body(job) == _body(job)


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED])
def test_build_body_is_under_20_kb_at_the_ascii_limits(status):
    # given the largest ASCII metadata the model accepts, a long error message and several masks
    metadata = {f"{i:02d}".ljust(40, "k"): "v" * 500 for i in range(16)}
    job = _job(
        status,
        request=Prompts(prompt="p" * 1000, metadata=metadata),
        masks=[_mask(i) for i in range(8)] if status is JobStatus.SUCCEEDED else [],
        error=JobError(type="upstream_failed", message="m" * 1000) if status is JobStatus.FAILED else None,
    )
    assert Prompts.model_validate({"prompt": "p", "metadata": metadata})  # the model takes it

    body = _body(job)

    assert len(body.encode()) < 20_000


def test_metadata_over_the_total_byte_cap_is_refused():
    metadata = {f"k{i:02d}": "\U0001f431" * 500 for i in range(16)}
    with pytest.raises(ValidationError, match="metadata may hold at most"):
        Prompts.model_validate({"prompt": "cat", "metadata": metadata})


def test_build_body_is_under_20_kb_with_the_largest_metadata_the_model_accepts():
    # 4-byte characters up to the total metadata cap (16 keys of 3 bytes, values filling the rest)
    per_value = (MAX_METADATA_BYTES - 16 * 3) // (16 * 4)
    metadata = {f"k{i:02d}": "\U0001f431" * per_value for i in range(16)}
    request = Prompts.model_validate({"prompt": "cat", "metadata": metadata})
    job = _job(JobStatus.SUCCEEDED, request=request, masks=[_mask(0)])

    assert len(_body(job).encode()) < 20_000


# --- one delivery attempt ------------------------------------------------------------------------

CLOCK = float(int(time.time()))


Receiver = Recording  # a plain function as the server, recording every request


def _sender(receiver: Receiver) -> WebhookSender:
    return WebhookSender(local=True, transport=httpx.MockTransport(receiver), clock=lambda: CLOCK)


def _send(
    sender: WebhookSender, url: str = HOOK, body: str = '{"type":"segmentation.succeeded"}'
) -> DeliveryAttempt:
    return sender.send(
        url,
        msg_id="msg_abc_succeeded",
        body=body,
        secrets_=[SECRET],
        event="segmentation.succeeded",
        attempt=3,
    )


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_webhook_sender_send_2xx_is_delivered(status):
    receiver = Receiver(lambda _: httpx.Response(status))

    attempt = _send(_sender(receiver))

    assert attempt.outcome == "delivered"
    assert attempt.status_code == status


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_webhook_sender_send_429_and_5xx_are_retrying(status):
    receiver = Receiver(lambda _: httpx.Response(status, headers={"retry-after": "30"}))

    attempt = _send(_sender(receiver))

    assert attempt.outcome == "retrying"
    assert attempt.status_code == status


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
def test_webhook_sender_send_other_4xx_gives_up(status):
    receiver = Receiver(lambda _: httpx.Response(status))

    attempt = _send(_sender(receiver))

    assert attempt.outcome == "gave_up"
    assert attempt.status_code == status


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_webhook_sender_send_does_not_follow_redirects(status):
    receiver = Receiver(lambda _: httpx.Response(status, headers={"location": "http://127.0.0.1:1/x"}))

    attempt = _send(_sender(receiver))

    assert attempt.outcome == "gave_up"
    assert attempt.status_code == status
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset")],
)
def test_webhook_sender_send_transport_error_is_retrying(error):
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    attempt = _send(_sender(Receiver(fail)))

    assert attempt.outcome == "retrying"
    assert attempt.status_code is None
    assert attempt.error == type(error).__name__


@pytest.mark.parametrize(
    "url",
    ["http://example.com/hooks", "http://10.0.0.1/hooks", "ftp://127.0.0.1/hooks", "http://u:p@127.0.0.1/"],
)
def test_webhook_sender_send_refuses_a_disallowed_url_without_sending(url):
    receiver = Receiver(lambda _: httpx.Response(200))

    attempt = _send(_sender(receiver), url=url)

    assert attempt.outcome == "refused"
    assert attempt.error
    assert receiver.requests == []


def test_webhook_sender_send_posts_the_body_byte_identical():
    receiver = Receiver(lambda _: httpx.Response(204))
    body = '{"type":"segmentation.succeeded","data":{"note":"café ☕"}}'

    _send(_sender(receiver), body=body)

    request = receiver.requests[0]
    assert request.method == "POST"
    assert str(request.url) == HOOK
    assert request.content == body.encode()


def test_webhook_sender_send_sets_the_standard_webhooks_headers():
    receiver = Receiver(lambda _: httpx.Response(204))

    _send(_sender(receiver))

    headers = receiver.requests[0].headers
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == "msg_abc_succeeded"
    assert headers["webhook-timestamp"] == str(int(CLOCK))
    assert headers["webhook-signature"] == _expected_signature(
        SECRET, "msg_abc_succeeded", int(CLOCK), receiver.requests[0].content
    )


def test_webhook_sender_send_signature_verifies_with_standardwebhooks():
    receiver = Receiver(lambda _: httpx.Response(204))
    body = json.dumps({"type": "segmentation.succeeded", "data": {"id": "seg_x"}})

    # the real clock: the verifier compares the timestamp with now (5 minutes' tolerance)
    _send(WebhookSender(local=True, transport=httpx.MockTransport(receiver)), body=body)

    request = receiver.requests[0]
    assert Webhook(SECRET).verify(request.content, dict(request.headers)) == json.loads(body)


def test_webhook_sender_send_records_the_attempt():
    receiver = Receiver(lambda _: httpx.Response(200))

    attempt = _send(_sender(receiver))

    assert attempt.webhook_id == "msg_abc_succeeded"
    assert attempt.event == "segmentation.succeeded"
    assert attempt.attempt == 3
    assert attempt.url == HOOK
    assert attempt.at == datetime.fromtimestamp(CLOCK, UTC)
    assert attempt.latency_ms is not None and attempt.latency_ms >= 0


def test_webhook_sender_send_reads_only_the_start_of_a_large_answer():
    chunks_served = []

    def endless():
        for i in range(1000):
            chunks_served.append(i)
            yield b"x" * 1024

    receiver = Receiver(lambda _: httpx.Response(200, content=endless()))

    attempt = _send(_sender(receiver))

    assert attempt.outcome == "delivered"
    assert len(chunks_served) * 1024 <= MAX_RESPONSE_BYTES + 1024
