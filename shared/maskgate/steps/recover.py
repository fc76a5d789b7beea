"""``POST /v1/webhook-endpoints/{id}/recover`` and ``…/messages/{webhook_id}/resend``: send a registered
endpoint, again, the events whose last attempt to it failed (or one of them): job events and kept
tenant events (``endpoint.disabled``), each through a delivery unit of its own with the same
webhook-id and body, as a redelivery is."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from maskgate.contracts.endpoints import Endpoint
from maskgate.errors import Conflict, EventNotFound, JobNotFound, NotFound
from maskgate.webhooks.body import job_event_of
from maskgate.webhooks.notifier import unit_name

if TYPE_CHECKING:
    from maskgate.webhooks.notifier import Notifier

RECOVER_PER_SECOND = 10  # units started by a recovery begin at most this many a second apart
RECOVER_MAX = 1000  # messages one recovery resends (recover again from where it stopped)


def recover(endpoint: Endpoint, *, since: datetime, notifier: Notifier) -> int:
    """Resend every event whose last attempt to the endpoint failed since ``since``; how many.

    The units start spread out (the endpoint's own rate, else ``RECOVER_PER_SECOND``), and each
    attempt still takes the endpoint's turn, so a recovery never floods the endpoint it recovers."""
    if not endpoint.enabled:
        raise Conflict(f"webhook endpoint {endpoint.id} is disabled; enable it before recovering it")
    attempts, _ = notifier.log.page(endpoint.id, limit=10 * RECOVER_MAX, since=since)
    last: dict[str, bool] = {}
    for attempt in attempts:  # newest first: the first seen is a message's last attempt
        last.setdefault(attempt.webhook_id, attempt.status == "failed")
    failed = [msg_id for msg_id, did_fail in last.items() if did_fail][:RECOVER_MAX]
    per_second = endpoint.rate_limit_per_second or RECOVER_PER_SECOND
    for n, msg_id in enumerate(reversed(failed)):  # the oldest first
        _resend(endpoint, msg_id, notifier=notifier, wait_seconds=n // per_second)
    return len(failed)


def resend(endpoint: Endpoint, msg_id: str, *, notifier: Notifier) -> str:
    """Send one event (a job's or a kept tenant event) to the endpoint again now; its webhook-id."""
    if not endpoint.enabled:
        raise Conflict(f"webhook endpoint {endpoint.id} is disabled; enable it before resending to it")
    _resend(endpoint, msg_id, notifier=notifier, wait_seconds=0)
    return msg_id


def _resend(endpoint: Endpoint, msg_id: str, *, notifier: Notifier, wait_seconds: int) -> None:
    name = f"{unit_name(msg_id, endpoint.id)}-x{secrets.token_hex(3)}"
    found = job_event_of(msg_id)
    if found is None:  # a tenant event (endpoint.disabled), if one of this tenant's is kept
        try:
            kept = notifier.events.get(msg_id)
        except EventNotFound:
            raise NotFound(f"no message {msg_id}") from None
        if kept.tenant != endpoint.tenant:
            raise NotFound(f"no message {msg_id}")
        _check_filter(endpoint, kept.type)
        notifier.units.start(
            name=name,
            message_id=msg_id,
            event=kept.type,
            step=0,
            wait_seconds=wait_seconds,
            endpoint_id=endpoint.id,
        )
        return
    job_id, event = found
    try:
        job = notifier.jobs.get(job_id)
    except JobNotFound:
        raise NotFound(f"no message {msg_id}: its job is gone") from None
    if job.tenant != endpoint.tenant or job.webhook_body is None:
        raise NotFound(f"no message {msg_id} for this endpoint")
    _check_filter(endpoint, event)
    notifier.units.start(
        name=name, job_id=job.id, event=event, step=0, wait_seconds=wait_seconds, endpoint_id=endpoint.id
    )


def _check_filter(endpoint: Endpoint, event: str) -> None:
    if not endpoint.receives(event):
        raise Conflict(f"webhook endpoint {endpoint.id} does not take {event} events")
