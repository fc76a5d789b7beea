"""The WaveSpeed API client: submit, read and list SAM3 predictions, download outputs.

Errors are classified by what they mean for a retry, never by message text. A submit is retryable
(``UpstreamUnavailable``, ``UpstreamRateLimited``) only where it surely did not land: a connect
failure, 429, or 503. Anything else once the request may have left (other 5xx, a broken or slow
answer, a 2xx whose body cannot be read: the prediction may exist) is ``UpstreamOutcomeUnknown``.
Reads are always safe to retry. 400/401/403 are ``UpstreamRejected``.

Every answer is bounded: each call has one wall-clock budget (``call_seconds``, ``download_seconds``)
on top of the per-operation timeouts, an API answer is read up to ``MAX_API_BYTES`` and an output up
to ``MAX_OUTPUT_BYTES``, and the body must hold a ``data`` object of the expected shape.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from maskgate.contracts.prompts import Prompts
from maskgate.egress.pinned import Budget, Deadline, deadline_transport, pinned_client
from maskgate.egress.url_check import CheckedUrl, Resolver, resolve, resolve_checked
from maskgate.errors import (
    MaskgateError,
    OutputInvalid,
    UpstreamFailed,
    UpstreamOutcomeUnknown,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
    UrlNotAllowed,
)
from maskgate.wavespeed import limits
from maskgate.wavespeed.prediction import PAGE_SIZE, Prediction, PredictionPage, wire_body

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=3.0)  # per socket operation
DEFAULT_CALL_SECONDS = 15.0  # one API call, end to end: well inside a 30 s Lambda
DEFAULT_DOWNLOAD_SECONDS = 20.0  # one output file
MAX_API_BYTES = 1024 * 1024  # an API answer is a small JSON envelope
API_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's own defaults
MAX_OUTPUT_BYTES = 32 * 1024 * 1024
# a connection that never opened carried no request: the only transport failures a submit may retry
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class _Answer:
    """A response's status and, unless ``problem`` says why not, its (capped) body."""

    status: int
    body: bytes | None
    problem: str = ""


class _CallFailed(Exception):
    """No status came back; ``sent`` is False only when the request surely never left."""

    def __init__(self, reason: str, *, sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent


def host_allowed(url: str, patterns: tuple[str, ...]) -> bool:
    """True if the URL's host matches one of the output host patterns (``*.wavespeed.ai``)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        return False
    return any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in patterns)


class WaveSpeedClient:
    """Submit, read and list SAM3 predictions; download their outputs."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        output_hosts: tuple[str, ...],
        local: bool = False,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        resolver: Resolver = resolve,
        call_seconds: float = DEFAULT_CALL_SECONDS,
        download_seconds: float = DEFAULT_DOWNLOAD_SECONDS,
    ) -> None:
        if call_seconds <= 0 or download_seconds <= 0:
            raise ValueError("call_seconds and download_seconds must be positive")
        self._output_hosts = output_hosts
        self._local = local
        self._timeout = timeout
        self._transport = transport
        self._resolver = resolver
        self._call_seconds = call_seconds
        self._download_seconds = download_seconds
        self._deadline = Deadline()
        self._http = httpx.Client(
            base_url=base_url,
            # identity: the byte cap then bounds what is held in memory, not a compressed stand-in
            headers={"Authorization": f"Bearer {api_key}", "Accept-Encoding": "identity"},
            timeout=timeout,
            transport=deadline_transport(self._deadline, inner=transport, limits=API_LIMITS),
            follow_redirects=False,
        )

    def submit(self, prompts: Prompts, *, image_url: str, webhook_url: str | None = None) -> Prediction:
        """Start a prediction. Raises Retryable only when the request surely did not land."""
        params = {"webhook": webhook_url} if webhook_url else None
        body = wire_body(prompts, image_url)
        try:
            answer = self._call("POST", f"/api/v3/{limits.MODEL_PATH}", json=body, params=params)
        except _CallFailed as exc:
            if not exc.sent:
                raise UpstreamUnavailable(f"could not reach WaveSpeed: {exc.reason}") from exc
            raise UpstreamOutcomeUnknown(
                f"the submit may have reached WaveSpeed ({exc.reason}); not retried"
            ) from exc
        refusal = _refusal(answer, unsure=UpstreamOutcomeUnknown)
        if refusal is not None:
            raise refusal
        try:
            return Prediction.model_validate(_data(answer))
        except UpstreamUnavailable as exc:  # it landed; we only failed to read the answer
            raise UpstreamOutcomeUnknown(f"WaveSpeed accepted the submit, but {exc.message}") from exc
        except ValidationError as exc:
            raise UpstreamOutcomeUnknown(
                "WaveSpeed accepted the submit with an unreadable prediction"
            ) from exc

    def get_prediction(self, prediction_id: str) -> Prediction:
        """Read a prediction; every transport failure is retryable (a read changes nothing)."""
        answer = self._read(
            "GET", f"/api/v3/predictions/{quote(prediction_id, safe='')}/result", "prediction"
        )
        if answer.status == 404:
            raise UpstreamFailed(f"WaveSpeed knows no prediction {prediction_id}")
        return _parsed(answer, Prediction, "prediction")

    def list_predictions(
        self,
        *,
        created_after: datetime,
        created_before: datetime,
        model: str | None = limits.MODEL_ID,
        max_pages: int = 3,
    ) -> list[Prediction]:
        """Predictions created in the window, newest first, each once (WaveSpeed keeps 7 days).

        Reads at most ``max_pages`` pages of ``PAGE_SIZE``, all within one call budget; history items
        carry no input or webhook.
        """
        if max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        query = _history_query(created_after, created_before, model)
        found: dict[str, Prediction] = {}  # a page boundary can shift while new predictions arrive
        with self._deadline.within(self._call_seconds):  # one budget for all the pages
            for number in range(1, max_pages + 1):
                page = self._history_page({"page": number, "page_size": PAGE_SIZE, **query})
                for item in page.items:
                    found.setdefault(item.id, item)
                if page.is_last(number):
                    break
        return list(found.values())

    def webhook_secret(self) -> str:
        """The secret WaveSpeed signs its callbacks with (``GET /api/v3/webhook/secret``)."""
        answer = self._read("GET", "/api/v3/webhook/secret", "webhook secret")
        if answer.status != 200:
            raise UpstreamUnavailable(f"WaveSpeed answered {answer.status} for the webhook secret")
        secret = _data(answer).get("secret")
        if not isinstance(secret, str) or not secret:
            raise UpstreamUnavailable("WaveSpeed returned no webhook secret")
        return secret

    def download(self, url: str, *, max_bytes: int = MAX_OUTPUT_BYTES) -> bytes:
        """Fetch one output file from an allowed output host, capped at ``max_bytes``."""
        if not host_allowed(url, self._output_hosts):
            raise OutputInvalid(f"output host of {urlsplit(url).hostname!r} is not on the allow-list")
        try:
            checked = resolve_checked(url, local=self._local, resolver=self._resolver)
        except UrlNotAllowed as exc:
            raise OutputInvalid(f"output URL refused: {exc.message}") from exc
        with self._deadline.within(self._download_seconds) as budget:
            try:
                with self._output_client(checked) as outputs, outputs.stream("GET", checked.url) as response:
                    _check_output_status(response.status_code)
                    return _read_output(response, max_bytes)
            except httpx.HTTPError as exc:
                raise UpstreamUnavailable(f"output download failed: {_reason(exc, budget)}") from exc

    def _output_client(self, checked: CheckedUrl) -> httpx.Client:
        """Outputs live on a CDN: fetched without our API key, pinned to the checked addresses."""
        if self._transport is not None:
            transport = deadline_transport(self._deadline, inner=self._transport)
            return httpx.Client(timeout=self._timeout, transport=transport, follow_redirects=False)
        return pinned_client(checked, timeout=self._timeout, deadline=self._deadline)

    def close(self) -> None:
        self._http.close()

    def _history_page(self, body: dict[str, Any]) -> PredictionPage:
        answer = self._read("POST", "/api/v3/predictions", "prediction history", json=body)
        return _parsed(answer, PredictionPage, "prediction history")

    def _read(self, method: str, path: str, what: str, **kwargs: Any) -> _Answer:
        """A call that changes nothing: any failure to get a status is retryable."""
        try:
            return self._call(method, path, **kwargs)
        except _CallFailed as exc:
            raise UpstreamUnavailable(f"could not read the {what}: {exc.reason}") from exc

    def _call(self, method: str, path: str, **kwargs: Any) -> _Answer:
        """One API call within the call budget: its status and at most ``MAX_API_BYTES`` of body."""
        with self._deadline.within(self._call_seconds) as budget:
            try:
                with self._http.stream(method, path, **kwargs) as response:
                    status = response.status_code
                    if status == 429 or status >= 500:  # the status says all we use: skip the body
                        return _Answer(status, None, "not read")
                    body, problem = _read_capped(response, MAX_API_BYTES, budget)
                    return _Answer(status, body, problem)
            except _NOT_SENT as exc:
                raise _CallFailed(_reason(exc, budget), sent=False) from exc
            except httpx.HTTPError as exc:
                raise _CallFailed(_reason(exc, budget), sent=True) from exc


def _refusal(answer: _Answer, *, unsure: type[MaskgateError]) -> MaskgateError | None:
    """The error a non-2xx status means; ``unsure`` for the ones that say nothing about the request."""
    status = answer.status
    if 200 <= status < 300:
        return None
    if status == 429:
        return UpstreamRateLimited("WaveSpeed rate limit (429)")
    if status == 503:
        return UpstreamUnavailable("WaveSpeed answered 503")
    if status in (401, 403):
        return UpstreamRejected(f"WaveSpeed refused the API key ({status})")
    if 400 <= status < 500:
        return UpstreamRejected(f"WaveSpeed rejected the request ({status}): {_message(answer)}")
    return unsure(f"WaveSpeed answered {status}")


def _parsed(answer: _Answer, model: type[_M], what: str) -> _M:
    """The answer's ``data`` as ``model``; any refusal or unreadable answer is retryable."""
    refusal = _refusal(answer, unsure=UpstreamUnavailable)
    if refusal is not None:
        raise refusal
    try:
        return model.model_validate(_data(answer))
    except ValidationError as exc:
        raise UpstreamUnavailable(f"WaveSpeed's {what} is not of the expected shape") from exc


def _data(answer: _Answer) -> dict[str, Any]:
    """The envelope's ``data`` object; UpstreamUnavailable when the body is not one."""
    if answer.body is None:
        raise UpstreamUnavailable(f"WaveSpeed's answer could not be read ({answer.problem})")
    try:
        envelope = json.loads(answer.body)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested past any sense
        raise UpstreamUnavailable("WaveSpeed answered with a body that is not JSON") from exc
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if not isinstance(data, dict):
        raise UpstreamUnavailable("WaveSpeed's answer holds no data object")
    return data


def _message(answer: _Answer) -> str:
    """The vendor's own words for a refusal, short."""
    text = (answer.body or b"")[:4096].decode("utf-8", "replace")
    try:
        envelope = json.loads(answer.body or b"")
    except (ValueError, RecursionError):
        return text[:300]
    message = envelope.get("message") if isinstance(envelope, dict) else None
    return str(message if message is not None else text)[:300]


def _read_capped(response: httpx.Response, limit: int, budget: Budget) -> tuple[bytes | None, str]:
    """The body if it is at most ``limit`` bytes and arrives in time; else None and why."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None, f"larger than {limit} bytes"
    try:
        return b"".join(_capped(response.iter_bytes(), limit)), ""
    except _TooLarge:
        return None, f"larger than {limit} bytes"
    except httpx.HTTPError as exc:
        return None, _reason(exc, budget)


class _TooLarge(Exception):
    """A body went past its cap."""


def _capped(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        yield chunk


def _check_output_status(status: int) -> None:
    if status >= 500 or status == 429:
        raise UpstreamUnavailable(f"output download answered {status}")
    if status != 200:
        raise OutputInvalid(f"output download answered {status}")


def _read_output(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    try:
        if declared.isdigit() and int(declared) > max_bytes:
            raise _TooLarge
        return b"".join(_capped(response.iter_bytes(), max_bytes))
    except _TooLarge as exc:
        raise OutputInvalid(f"output is larger than {max_bytes} bytes") from exc


def _reason(exc: httpx.HTTPError, budget: Budget) -> str:
    """What ended a call: its deadline, or the httpx error's name."""
    if isinstance(exc, httpx.TimeoutException) and budget.expired():
        return f"no complete answer within the {budget.ends - budget.started:g} s deadline"
    return type(exc).__name__


def _history_query(created_after: datetime, created_before: datetime, model: str | None) -> dict[str, str]:
    """The history filters, times as UTC ISO 8601."""
    if created_after.tzinfo is None or created_before.tzinfo is None:
        raise ValueError("created_after and created_before must be timezone-aware")
    if created_after > created_before:
        raise ValueError("created_after is later than created_before")
    query = {"created_after": _iso(created_after), "created_before": _iso(created_before)}
    if model:
        query["model"] = model
    return query


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
