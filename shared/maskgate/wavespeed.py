"""The WaveSpeed API client (DESIGN §8): submit and read SAM3 predictions, download outputs.

Errors are classified by what they mean for a retry, never by message text:
a submit is retried only where it surely did not land (connect error, 429, 503); a read is always
safe to retry. Every call has connect and read timeouts.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from maskgate import wavespeed_limits as limits
from maskgate.errors import (
    OutputInvalid,
    UpstreamFailed,
    UpstreamOutcomeUnknown,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
    UrlNotAllowed,
)
from maskgate.models import Prompts
from maskgate.pinning import pinned_client
from maskgate.urls import CheckedUrl, Resolver, resolve, resolve_checked

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=3.0)
MAX_OUTPUT_BYTES = 32 * 1024 * 1024


class Prediction(BaseModel):
    """A prediction as WaveSpeed reports it (vendor shape: unknown fields ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str
    status: Literal["created", "processing", "completed", "failed"]
    outputs: list[str] = []
    error: str | None = None
    model: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")


def wire_body(prompts: Prompts, image_url: str) -> dict[str, Any]:
    """The submit body WaveSpeed takes for a validated request."""
    body: dict[str, Any] = {
        "image": image_url,
        "apply_mask": prompts.apply_mask,
        "output_format": prompts.output_format,
    }
    if prompts.prompt is not None:
        body["prompt"] = prompts.prompt
    if prompts.point_prompts:
        body["point_prompts"] = [p.model_dump() for p in prompts.point_prompts]
    if prompts.box_prompts:
        body["box_prompts"] = [b.model_dump() for b in prompts.box_prompts]
    return body


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
    """Submit and read SAM3 predictions."""

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
    ) -> None:
        self._output_hosts = output_hosts
        self._local = local
        self._timeout = timeout
        self._transport = transport
        self._resolver = resolver
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def submit(self, prompts: Prompts, *, image_url: str, webhook_url: str | None = None) -> Prediction:
        """Start a prediction. Raises Retryable only when the request surely did not land."""
        params = {"webhook": webhook_url} if webhook_url else None
        try:
            response = self._http.post(
                f"/api/v3/{limits.MODEL_PATH}", json=wire_body(prompts, image_url), params=params
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise UpstreamUnavailable(f"could not reach WaveSpeed: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamOutcomeUnknown(
                f"the submit may have reached WaveSpeed ({type(exc).__name__}); not retried"
            ) from exc
        if response.status_code >= 500 and response.status_code != 503:
            raise UpstreamOutcomeUnknown(f"WaveSpeed answered {response.status_code} to the submit")
        try:
            return self._prediction(response)
        except UpstreamUnavailable as exc:
            if response.is_success:  # it landed; we only failed to read the answer
                raise UpstreamOutcomeUnknown("WaveSpeed accepted the submit with an unreadable body") from exc
            raise

    def get_prediction(self, prediction_id: str) -> Prediction:
        """Read a prediction; every transport failure is retryable (a read changes nothing)."""
        try:
            response = self._http.get(f"/api/v3/predictions/{prediction_id}/result")
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"could not read the prediction: {type(exc).__name__}") from exc
        if response.status_code == 404:
            raise UpstreamFailed(f"WaveSpeed knows no prediction {prediction_id}")
        return self._prediction(response)

    def webhook_secret(self) -> str:
        """The secret WaveSpeed signs its callbacks with (``GET /api/v3/webhook/secret``)."""
        try:
            response = self._http.get("/api/v3/webhook/secret")
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"could not read the webhook secret: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise UpstreamUnavailable(f"WaveSpeed answered {response.status_code} for the webhook secret")
        try:
            secret = response.json()["data"]["secret"]
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamUnavailable("WaveSpeed's webhook secret answer is unreadable") from exc
        if not isinstance(secret, str) or not secret:
            raise UpstreamUnavailable("WaveSpeed returned an empty webhook secret")
        return secret

    def download(self, url: str, *, max_bytes: int = MAX_OUTPUT_BYTES) -> bytes:
        """Fetch one output file from an allowed output host, capped at ``max_bytes``."""
        if not host_allowed(url, self._output_hosts):
            raise OutputInvalid(f"output host of {urlsplit(url).hostname!r} is not on the allow-list")
        try:
            checked = resolve_checked(url, local=self._local, resolver=self._resolver)
        except UrlNotAllowed as exc:
            raise OutputInvalid(f"output URL refused: {exc.message}") from exc
        try:
            with self._output_client(checked) as outputs, outputs.stream("GET", checked.url) as response:
                if response.status_code >= 500 or response.status_code == 429:
                    raise UpstreamUnavailable(f"output download answered {response.status_code}")
                if response.status_code != 200:
                    raise OutputInvalid(f"output download answered {response.status_code}")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise OutputInvalid(f"output is larger than {max_bytes} bytes")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"output download failed: {type(exc).__name__}") from exc
        return b"".join(chunks)

    def _output_client(self, checked: CheckedUrl) -> httpx.Client:
        """Outputs live on a CDN: fetched without our API key, pinned to the checked addresses."""
        if self._transport is not None:
            return httpx.Client(timeout=self._timeout, transport=self._transport, follow_redirects=False)
        return pinned_client(checked, timeout=self._timeout)

    def close(self) -> None:
        self._http.close()

    @staticmethod
    def _prediction(response: httpx.Response) -> Prediction:
        status = response.status_code
        if status == 429:
            raise UpstreamRateLimited("WaveSpeed rate limit (429)")
        if status == 503 or status >= 500:
            raise UpstreamUnavailable(f"WaveSpeed answered {status}")
        if status in (401, 403):
            raise UpstreamRejected(f"WaveSpeed refused the API key ({status})")
        if status >= 400:
            raise UpstreamRejected(f"WaveSpeed rejected the request ({status}): {_message(response)}")
        try:
            envelope = response.json()
            return Prediction.model_validate(envelope["data"])
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise UpstreamUnavailable("WaveSpeed answered with an unreadable body") from exc


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", ""))[:300]
    except ValueError:
        return response.text[:300]
