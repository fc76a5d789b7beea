"""WaveSpeed's callback signature (pure): HMAC-SHA256 over ``"{webhook-id}.{webhook-timestamp}.{raw body}"``,
keyed by its secret without the ``whsec_`` prefix as UTF-8 bytes, sent as ``webhook-signature: v3,<hex>``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from maskgate.errors import Unauthorized

MAX_AGE_SECONDS = 300


def wavespeed_signature(secret: str, *, msg_id: str, timestamp: str, body: bytes) -> str:
    """The hex HMAC WaveSpeed sends after ``v3,``."""
    key = secret.removeprefix("whsec_").encode()
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(
    secret: str, *, headers: Mapping[str, str], body: bytes, now: float, max_age: int = MAX_AGE_SECONDS
) -> str:
    """Check a callback's v3 signature and age; return its webhook-id or raise Unauthorized."""
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and timestamp and signatures):
        raise Unauthorized("the callback is not signed")
    if not (timestamp.isascii() and timestamp.isdigit()) or abs(now - int(timestamp)) > max_age:
        raise Unauthorized("the callback's timestamp is missing or older than 5 minutes")
    expected = wavespeed_signature(secret, msg_id=msg_id, timestamp=timestamp, body=body)
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v3" and value.isascii() and hmac.compare_digest(value, expected):
            return msg_id
    raise Unauthorized("the callback's signature does not verify")
