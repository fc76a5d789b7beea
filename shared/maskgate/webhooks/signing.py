"""Standard Webhooks v1 signing and the signed mask links (pure: no I/O).

A tenant secret is ``whsec_`` + base64 of 32 random bytes; a signature is
``v1,<base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>``, one per active secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format prefix)
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


def signature_header(secrets_: list[str], *, msg_id: str, timestamp: int, body: bytes) -> str:
    """Space-separated signatures, one per active secret (rotation sends both)."""
    return " ".join(sign(s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets_)


def mask_token(secret: str, *, job_id: str, index: int, expires: int) -> str:
    """A signed, expiring token authorising one mask download without an API key."""
    mac = hmac.new(_key(secret), f"mask:{job_id}:{index}:{expires}".encode(), hashlib.sha256).digest()
    return f"{expires}.{base64.urlsafe_b64encode(mac[:18]).decode()}"


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
