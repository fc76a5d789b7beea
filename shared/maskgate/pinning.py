"""HTTP clients pinned to the addresses ``maskgate.urls.resolve_checked`` checked (DESIGN §7).

Checking a URL and then letting the HTTP client resolve its host again leaves a gap: a DNS answer
that changes in between (rebinding) sends the request to an address nobody checked. So the client
never resolves. httpcore asks its network backend to ``connect_tcp(host, port)`` with the URL's
host; ``PinnedBackend`` answers by opening the socket to one of the checked addresses instead.
Everything above the socket still sees the original host: the ``Host`` header, TLS SNI and the
certificate's hostname check. A connection to any other host or port is refused, so a client is
good for one checked origin only.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from functools import cache

import httpcore
import httpx

from maskgate.errors import UrlNotAllowed
from maskgate.urls import CheckedUrl


class PinnedBackend(httpcore.NetworkBackend):
    """Opens TCP connections for ``host:port`` to the checked addresses, in order, never resolving."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        addresses: tuple[str, ...],
        inner: httpcore.NetworkBackend | None = None,
    ) -> None:
        self._host = host.lower()
        self._port = port
        self._addresses = addresses
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        if host.lower() != self._host or port != self._port:
            raise httpcore.ConnectError(f"{host}:{port} is not the checked origin {self._host}:{self._port}")
        deadline = None if timeout is None else time.monotonic() + timeout
        failure: Exception = httpcore.ConnectError(f"no checked address for {self._host}")
        for address in self._addresses:  # like happy eyeballs' fallback, minus the racing
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise httpcore.ConnectTimeout(f"connecting to {self._host} timed out") from failure
            try:
                return self._inner.connect_tcp(
                    address,
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connection pool connects through a ``PinnedBackend``.

    httpx does not expose httpcore's ``network_backend``, so the pool the base class builds is
    replaced by an equivalent one that has it (tests/unit/test_pinning.py guards the seam). Proxies
    from the environment are never used: a proxy would resolve the host itself.
    """

    def __init__(
        self,
        checked: CheckedUrl,
        *,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
        network_backend: httpcore.NetworkBackend | None = None,
    ) -> None:
        ssl_context = (
            _verified_context()
            if verify is True
            else httpx.create_ssl_context(verify=verify, trust_env=False)
        )
        limits = limits or httpx.Limits()
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        self.checked = checked
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedBackend(
                host=_client_host(checked),
                port=checked.port,
                addresses=checked.addresses,
                inner=network_backend,
            ),
        )


@cache
def _verified_context() -> ssl.SSLContext:
    """The default verifying context, built once per container: loading the CA bundle costs about
    28 ms of CPU, which every webhook attempt and output download paid before. Contexts are safe to
    share between connections and threads."""
    return httpx.create_ssl_context(verify=True, trust_env=False)


def _client_host(checked: CheckedUrl) -> str:
    """The host httpx will connect for; it must be the one that was checked."""
    try:
        url = httpx.URL(checked.url)
    except httpx.InvalidURL as exc:
        raise UrlNotAllowed("the URL is malformed") from exc
    host = url.raw_host.decode("ascii").lower()
    if host != checked.host or (url.port or checked.port) != checked.port:
        raise UrlNotAllowed(f"the URL's host reads as {host!r} to the HTTP client, not {checked.host!r}")
    return host


def pinned_client(
    checked: CheckedUrl,
    *,
    timeout: httpx.Timeout,
    max_redirects: int = 0,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Client:
    """An httpx client that reaches only ``checked``'s origin, at its checked addresses.

    With ``max_redirects`` 0 (the default) no redirect is followed; otherwise redirects within the
    origin are, and one to anywhere else fails to connect (``httpx.ConnectError``).
    """
    return httpx.Client(
        transport=PinnedTransport(checked, verify=verify),
        timeout=timeout,
        follow_redirects=max_redirects > 0,
        max_redirects=max_redirects,
        trust_env=False,
    )
