"""Standard Webhooks signing, v1 and v1a, and the signed mask links (pure: no I/O).

v1 (symmetric): a secret is ``whsec_`` + base64 of 32 random bytes; a signature is
``v1,<base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>``.

v1a (asymmetric, an endpoint's choice): the signing key is ``whsk_`` + base64 of a raw 32-byte Ed25519
private key (its seed), its public key ``whpk_`` + base64 of the raw 32-byte public key; a signature is
``v1a,<base64 Ed25519 signature of "{webhook-id}.{webhook-timestamp}.{body}">`` (64 bytes). The prefix
tells which scheme a key signs with, as the spec means it to, so a list of active keys may hold either.
``cryptography`` is imported only when a v1a key is made or used: no function's cold start pays for it.

``webhook-signature`` carries one space-separated signature per active key (rotation sends both).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format prefix)
PRIVATE_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"
ROTATION_OVERLAP = timedelta(hours=24)  # a rotated-out secret keeps signing alongside the new one


def new_secret() -> str:
    """A tenant webhook secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` per Standard Webhooks."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def new_key_pair() -> tuple[str, str]:
    """A v1a key pair: (``whsk_`` + base64 of the raw 32-byte private key, ``whpk_`` + base64 of the
    raw 32-byte public key)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return _encoded(Ed25519PrivateKey.generate())


def public_key(private_key: str) -> str:
    """The ``whpk_`` public key of a ``whsk_`` private key."""
    return _encoded(_private(private_key))[1]


def sign_v1a(private_key: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1a,<base64 Ed25519 signature of "{id}.{timestamp}.{body}">`` per Standard Webhooks."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1a," + base64.b64encode(_private(private_key).sign(signed)).decode()


def signature_header(secrets_: list[str], *, msg_id: str, timestamp: int, body: bytes) -> str:
    """Space-separated signatures, one per active key (rotation sends both), each by its key's scheme:
    ``v1a`` for a ``whsk_`` private key, ``v1`` for a ``whsec_`` secret."""
    return " ".join(
        (sign_v1a if s.startswith(PRIVATE_KEY_PREFIX) else sign)(
            s, msg_id=msg_id, timestamp=timestamp, body=body
        )
        for s in secrets_
    )


def _private(private_key: str) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not private_key.startswith(PRIVATE_KEY_PREFIX):
        raise ValueError("a v1a private key starts with whsk_")
    return Ed25519PrivateKey.from_private_bytes(
        base64.b64decode(private_key.removeprefix(PRIVATE_KEY_PREFIX))
    )


def _encoded(key: Ed25519PrivateKey) -> tuple[str, str]:
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return (
        PRIVATE_KEY_PREFIX + base64.b64encode(private).decode(),
        PUBLIC_KEY_PREFIX + base64.b64encode(public).decode(),
    )


def mask_token(secret: str, *, job_id: str, index: int, expires: int) -> str:
    """A signed, expiring token authorising one mask download without an API key."""
    mac = hmac.new(_key(secret), f"mask:{job_id}:{index}:{expires}".encode(), hashlib.sha256).digest()
    return f"{expires}.{base64.urlsafe_b64encode(mac[:18]).decode()}"


def result_token(secret: str, *, job_id: str, name: str, expires: int) -> str:
    """A signed, expiring token authorising one result file's download (instances.json, the COCO file)."""
    mac = hmac.new(_key(secret), f"result:{job_id}:{name}:{expires}".encode(), hashlib.sha256).digest()
    return f"{expires}.{base64.urlsafe_b64encode(mac[:18]).decode()}"


def result_token_valid(token: str, secrets_: list[str], *, job_id: str, name: str, now: float) -> bool:
    """True if the token was made by one of the secrets for this result file and has not expired."""
    expires_text, _, _ = token.partition(".")
    if (
        not (token.isascii() and expires_text.isdigit() and len(expires_text) <= 12)
        or int(expires_text) < now
    ):
        return False
    expires = int(expires_text)
    return any(
        hmac.compare_digest(token, result_token(s, job_id=job_id, name=name, expires=expires))
        for s in secrets_
    )


def mask_token_valid(token: str, secrets_: list[str], *, job_id: str, index: int, now: float) -> bool:
    """True if the token was made by one of the secrets for this mask and has not expired."""
    expires_text, _, _ = token.partition(".")
    if (
        not (token.isascii() and expires_text.isdigit() and len(expires_text) <= 12)
        or int(expires_text) < now
    ):
        return False
    expires = int(expires_text)
    return any(
        hmac.compare_digest(token, mask_token(s, job_id=job_id, index=index, expires=expires))
        for s in secrets_
    )
