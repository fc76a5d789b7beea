"""One signed delivery attempt of a webhook, to the addresses its URL check resolved, in one budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from maskgate.contracts.job import DeliveryAttempt
from maskgate.egress.pinned import Budget, Deadline, deadline_transport, pinned_client
from maskgate.egress.url_check import CheckedUrl, Resolver, resolve, resolve_checked
from maskgate.errors import UrlNotAllowed
from maskgate.webhooks.signing import signature_header

DELIVERY_TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # per socket operation
DEFAULT_ATTEMPT_SECONDS = 10.0  # the whole attempt, whatever each operation takes
MAX_ATTEMPT_SECONDS = 15.0  # half the Notify Lambda's 30 s: the attempt must end before it does
DEADLINE_ERROR = "AttemptDeadlineExceeded"
MAX_RESPONSE_BYTES = 4096
EXCERPT_BYTES = 1024  # what an endpoint's attempt log keeps of its answer


class WebhookSender:
    """Sends one signed attempt and reports how it went; the workflow owns the retries.

    Each attempt has one wall-clock budget (``attempt_seconds``) across connecting, sending, the
    response head and the capped body read: a receiver that trickles its answer is cut off at the
    budget and the attempt is ``retrying`` with error ``AttemptDeadlineExceeded``. The budget stays
    well inside a 30 s Lambda, which would otherwise be killed first and lose the record.
    """

    def __init__(
        self,
        *,
        local: bool,
        transport: httpx.BaseTransport | None = None,
        resolver: Resolver = resolve,
        clock: Callable[[], float] = time.time,
        attempt_seconds: float = DEFAULT_ATTEMPT_SECONDS,
    ) -> None:
        if not 0 < attempt_seconds <= MAX_ATTEMPT_SECONDS:
            raise ValueError(f"attempt_seconds must be in (0, {MAX_ATTEMPT_SECONDS}], not {attempt_seconds}")
        self._local = local
        self._transport = transport
        self._resolver = resolver
        self._clock = clock
        self._attempt_seconds = attempt_seconds
        self._deadline = Deadline()

    def _client(self, checked: CheckedUrl) -> httpx.Client:
        """A client that connects only to the checked addresses (a test may inject a transport);
        either way held to the attempt's deadline."""
        if self._transport is not None:
            return httpx.Client(
                timeout=DELIVERY_TIMEOUT,
                follow_redirects=False,
                transport=deadline_transport(self._deadline, inner=self._transport),
            )
        return pinned_client(checked, timeout=DELIVERY_TIMEOUT, deadline=self._deadline)

    def send(
        self, url: str, *, msg_id: str, body: str, secrets_: list[str], event: str, attempt: int
    ) -> DeliveryAttempt:
        """One attempt: ``delivered`` on 2xx, ``retrying`` on timeouts/429/5xx, else ``gave_up``."""
        started = self._clock()
        record = DeliveryAttempt(
            webhook_id=msg_id,
            event=event,
            attempt=attempt,
            url=url,
            at=datetime.fromtimestamp(started, UTC),
            outcome="gave_up",
        )
        # the budget starts before resolving: a slow DNS answer leaves less time to connect
        with self._deadline.within(self._attempt_seconds) as budget:
            try:
                checked = resolve_checked(url, local=self._local, resolver=self._resolver)
            except UrlNotAllowed as exc:
                return record.model_copy(update={"error": exc.message, "outcome": "refused"})
            payload = body.encode()
            headers = _headers(msg_id, timestamp=int(started), payload=payload, secrets_=secrets_)
            try:
                status, retry_after, excerpt = self._post(checked, payload, headers, now=started)
            except httpx.HTTPError as exc:
                error = _error_name(exc, budget)
                return record.model_copy(
                    update={"error": error, "outcome": "retrying", "latency_ms": budget.elapsed_ms()}
                )
            return record.model_copy(
                update={
                    "status_code": status,
                    "outcome": _outcome(status),
                    "latency_ms": budget.elapsed_ms(),
                    "retry_after": retry_after,
                    "response": excerpt,
                }
            )

    def _post(
        self, checked: CheckedUrl, payload: bytes, headers: dict[str, str], *, now: float
    ) -> tuple[int, int | None, str]:
        """POST the signed payload; the status, any ``Retry-After`` and the start of the answer (its
        body drained, capped)."""
        with (
            self._client(checked) as client,
            client.stream("POST", checked.url, content=payload, headers=headers) as response,
        ):
            head = _drain(response)
        retry_after = _retry_after(response.headers.get("retry-after"), now=now)
        return response.status_code, retry_after, excerpt(head)


def _headers(msg_id: str, *, timestamp: int, payload: bytes, secrets_: list[str]) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt."""
    return {
        "content-type": "application/json",
        "user-agent": "maskgate-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_, msg_id=msg_id, timestamp=timestamp, body=payload),
    }


def _error_name(exc: httpx.HTTPError, budget: Budget) -> str:
    """The attempt's error: the deadline when it was what ended the attempt, else the httpx error."""
    if isinstance(exc, httpx.TimeoutException) and budget.expired():
        return DEADLINE_ERROR
    return type(exc).__name__


def _outcome(status: int) -> Literal["delivered", "retrying", "gave_up"]:
    if 200 <= status < 300:
        return "delivered"
    return "retrying" if status == 429 or status >= 500 else "gave_up"


def _retry_after(value: str | None, *, now: float) -> int | None:
    """Seconds a receiver asked us to wait (delta-seconds or an HTTP date), if it said so."""
    if not value:
        return None
    if value.strip().isdigit():
        return int(value.strip())
    try:
        return max(0, int(parsedate_to_datetime(value).timestamp() - now))
    except (TypeError, ValueError):
        return None


def _drain(response: httpx.Response) -> bytes:
    """Read at most MAX_RESPONSE_BYTES of a receiver's answer (we never need more); its first
    EXCERPT_BYTES."""
    head = b""
    read = 0
    for chunk in response.iter_bytes():
        if len(head) < EXCERPT_BYTES:
            head += chunk[: EXCERPT_BYTES - len(head)]
        read += len(chunk)
        if read >= MAX_RESPONSE_BYTES:
            break
    return head


def excerpt(head: bytes) -> str:
    """The start of an answer as text a log can show: invalid UTF-8 replaced, every control
    character (newlines and terminal escapes included) written as an escape."""
    text = head[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
