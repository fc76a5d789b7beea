"""Job ids: ``seg_`` + a ULID-style id (48-bit millisecond time + 80 bits, Crockford base32).

Ids sort by creation time. API jobs take random bits; S3-triggered jobs derive them from the event
(bucket, key, and a per-write discriminator) so a redelivered event maps to the same job.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime

PREFIX = "seg_"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PATTERN = r"^seg_[0-9A-HJKMNP-TV-Z]{26}$"

# Given a fresh job id and time, the id and time this create must use. Set by maskgate.stores.idempotency
# while a create with an Idempotency-Key runs: it answers with what the key's first attempt claimed,
# so a retry of an attempt that crashed after writing its job adopts that job instead of a second.
JobIdClaim = Callable[[str, datetime], tuple[str, datetime]]
job_id_claim: ContextVar[JobIdClaim | None] = ContextVar("job_id_claim", default=None)


def _encode(millis: int, tail: bytes) -> str:
    value = (millis << 80) | int.from_bytes(tail[:10], "big")
    chars = []
    for _ in range(26):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _millis(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("job ids need an aware datetime")
    return int(at.timestamp() * 1000) & ((1 << 48) - 1)


def new_job_id(at: datetime) -> str:
    """A fresh job id whose time part is ``at``."""
    return PREFIX + _encode(_millis(at), secrets.token_bytes(10))


def derived_job_id(at: datetime, *parts: str) -> str:
    """A job id whose random part is a hash of ``parts``: equal parts give the same id."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return PREFIX + _encode(_millis(at), digest)


def job_id_time(job_id: str) -> int:
    """The millisecond timestamp encoded in a job id."""
    value = 0
    for char in job_id.removeprefix(PREFIX)[:10]:
        value = value * 32 + CROCKFORD.index(char)
    return value
