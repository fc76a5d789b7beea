"""maskgate.webhooks.signing, v1a: Standard Webhooks' asymmetric scheme (Ed25519). Keys and signatures
are checked against RFC 8032's first test vector and with PyNaCl (libsodium), an Ed25519 that is not the
``cryptography`` maskgate signs with; a delivery goes through ``httpx.MockTransport``."""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from maskgate.webhooks.sender import WebhookSender
from maskgate.webhooks.signing import (
    new_key_pair,
    new_secret,
    public_key,
    sign,
    sign_v1a,
    signature_header,
)
from tests.support.fakes import Recording

ROOT = Path(__file__).resolve().parents[2]
# RFC 8032, 7.1, TEST 1: the private key (seed), its public key, and the signature of the empty message
RFC_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
PRIVATE = "whsk_" + base64.b64encode(RFC_SEED).decode()
OTHER_PRIVATE = "whsk_" + base64.b64encode(bytes(range(32))).decode()
BODY = b'{"type":"segmentation.succeeded","data":{"id":"seg_x"}}'


def _raw(key: str, prefix: str) -> bytes:
    assert key.startswith(prefix)
    return base64.b64decode(key.removeprefix(prefix), validate=True)


def _verifies(public: str, signature: str, *, msg_id: str, timestamp: int | str, body: bytes) -> bool:
    """PyNaCl's verdict on one ``v1a,<base64>`` signature."""
    version, _, encoded = signature.partition(",")
    assert version == "v1a"
    try:
        VerifyKey(_raw(public, "whpk_")).verify(
            f"{msg_id}.{timestamp}.".encode() + body, base64.b64decode(encoded)
        )
    except BadSignatureError:
        return False
    return True


def test_public_key_of_rfc_8032_test_1():
    assert _raw(public_key(PRIVATE), "whpk_") == RFC_PUBLIC


def test_sign_v1a_is_the_ed25519_signature_of_id_timestamp_body():
    signature = sign_v1a(PRIVATE, msg_id="msg_1", timestamp=1_700_000_000, body=BODY)

    expected = SigningKey(RFC_SEED).sign(b"msg_1.1700000000." + BODY).signature  # Ed25519 is deterministic
    assert signature == "v1a," + base64.b64encode(expected).decode()
    assert len(base64.b64decode(signature.removeprefix("v1a,"))) == 64


def test_new_key_pair_is_whsk_and_whpk_of_raw_32_byte_keys_that_belong_together():
    private, public = new_key_pair()

    assert len(_raw(private, "whsk_")) == 32 and len(_raw(public, "whpk_")) == 32
    assert public_key(private) == public
    assert bytes(SigningKey(_raw(private, "whsk_")).verify_key) == _raw(public, "whpk_")


def test_new_key_pairs_are_random():
    assert len({new_key_pair()[0] for _ in range(10)}) == 10


def test_a_v1a_signature_verifies_with_pynacl():
    private, public = new_key_pair()

    signature = sign_v1a(private, msg_id="msg_a", timestamp=1_700_000_000, body=BODY)

    assert _verifies(public, signature, msg_id="msg_a", timestamp=1_700_000_000, body=BODY)


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "body"),
    [
        pytest.param("msg_a", 1_700_000_000, BODY.replace(b"seg_x", b"seg_y"), id="body"),
        pytest.param("msg_a", 1_700_000_001, BODY, id="timestamp"),
        pytest.param("msg_b", 1_700_000_000, BODY, id="webhook-id"),
        pytest.param("msg_a", 1_700_000_000, BODY + b" ", id="a trailing space"),
    ],
)
def test_a_v1a_signature_fails_for_anything_changed(msg_id, timestamp, body):
    private, public = new_key_pair()
    signature = sign_v1a(private, msg_id="msg_a", timestamp=1_700_000_000, body=BODY)

    assert not _verifies(public, signature, msg_id=msg_id, timestamp=timestamp, body=body)


def test_a_v1a_signature_fails_under_another_public_key():
    signature = sign_v1a(PRIVATE, msg_id="m", timestamp=5, body=BODY)

    assert not _verifies(public_key(OTHER_PRIVATE), signature, msg_id="m", timestamp=5, body=BODY)


def test_signature_header_during_a_v1a_rotation_has_two_v1a_signatures_one_per_key():
    header = signature_header([PRIVATE, OTHER_PRIVATE], msg_id="m", timestamp=5, body=BODY)

    current, previous = header.split(" ")
    assert _verifies(public_key(PRIVATE), current, msg_id="m", timestamp=5, body=BODY)
    assert _verifies(public_key(OTHER_PRIVATE), previous, msg_id="m", timestamp=5, body=BODY)
    assert not _verifies(public_key(PRIVATE), previous, msg_id="m", timestamp=5, body=BODY)


def test_signature_header_signs_each_key_by_its_prefix():
    secret = new_secret()

    header = signature_header([secret, PRIVATE], msg_id="m", timestamp=5, body=BODY)

    assert header.split(" ") == [
        sign(secret, msg_id="m", timestamp=5, body=BODY),
        sign_v1a(PRIVATE, msg_id="m", timestamp=5, body=BODY),
    ]


def test_a_key_without_the_whsk_prefix_is_no_v1a_key():
    with pytest.raises(ValueError, match="whsk_"):
        sign_v1a(new_secret(), msg_id="m", timestamp=5, body=BODY)


def test_a_delivery_with_a_v1a_key_carries_a_v1a_signature_that_verifies():
    recording = Recording(lambda request: httpx.Response(204))
    sender = WebhookSender(
        local=True, transport=httpx.MockTransport(recording), clock=lambda: 1_700_000_000.0
    )

    attempt = sender.send(
        "http://127.0.0.1:9999/hooks",
        msg_id="msg_s",
        body=BODY.decode(),
        secrets_=[PRIVATE],
        event="e",
        attempt=1,
    )

    assert attempt.outcome == "delivered"
    [request] = recording.requests
    signature = request.headers["webhook-signature"]
    assert signature.startswith("v1a,") and " " not in signature
    assert _verifies(
        public_key(PRIVATE), signature, msg_id="msg_s", timestamp="1700000000", body=request.content
    )


def test_nothing_imports_cryptography_until_a_v1a_key_is_used():
    script = textwrap.dedent(
        """
        import sys
        import maskgate.api.app, maskgate.stores.endpoints
        import maskgate.webhooks.notifier, maskgate.webhooks.sender
        from maskgate.webhooks.signing import new_secret, signature_header

        signature_header([new_secret()], msg_id="m", timestamp=5, body=b"{}")
        before = "cryptography" in sys.modules
        from maskgate.webhooks.signing import new_key_pair

        new_key_pair()
        print(before, "cryptography" in sys.modules)
        """
    )
    done = subprocess.run(  # noqa: S603 - a fresh interpreter: this one imported cryptography long ago
        [sys.executable, "-W", "ignore", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "",
            "PYTHONPATH": str(ROOT / "shared"),
            "AWS_DEFAULT_REGION": "us-east-1",
            "MASKGATE_TABLE": "jobs",
            "MASKGATE_BUCKET": "bucket",
            "MASKGATE_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
        },
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "True"]
