"""HTTP clients pinned to the addresses ``maskgate.egress.url_check.resolve_checked`` checked, and
wall-clock deadlines for whole calls.

Checking a URL and then letting the HTTP client resolve its host again leaves a gap: a DNS answer
that changes in between (rebinding) sends the request to an address nobody checked. So the client
never resolves. httpcore asks its network backend to ``connect_tcp(host, port)`` with the URL's
host; ``PinnedBackend`` answers by opening the socket to one of the checked addresses instead.
Everything above the socket still sees the original host: the ``Host`` header, TLS SNI and the
certificate's hostname check. A connection to any other host or port is refused, so a client is
good for one checked origin only.

httpx's timeouts are per socket operation: a peer that sends one byte every few seconds never
trips a read timeout and can hold a call for minutes. A ``Deadline`` gives a call one budget;
``DeadlineBackend`` cuts every connect, TLS handshake, read and write to what is left of it and
fails the next one once it is spent (httpcore's own Connect/Read/WriteTimeout, so httpx maps them
as usual). No threads: the socket timeout does the waiting. ``DeadlineTransport`` applies the same
budget above any transport (a test's ``MockTransport`` has no sockets): before sending and between
body chunks.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import httpcore
import httpx

from maskgate.egress.url_check import CheckedUrl
from maskgate.errors import UrlNotAllowed


@dataclass(frozen=True)
class Budget:
    """One call's wall-clock budget, on a monotonic clock."""

    started: float
    ends: float
    clock: Callable[[], float] = time.monotonic

    def remaining(self) -> float:
        return self.ends - self.clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def elapsed_ms(self) -> int:
        return int((self.clock() - self.started) * 1000)


class Deadline:
    """The budget of the call the current thread is making, shared by every connection it uses.

    Per thread, because a client (and its pooled connections) may be shared between threads
    while each call has its own budget.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._current = threading.local()

    def budget(self) -> Budget | None:
        current: Budget | None = getattr(self._current, "budget", None)
        return current

    @contextmanager
    def within(self, seconds: float) -> Iterator[Budget]:
        """Every network operation inside the block shares ``seconds`` (a nested block never extends
        the outer one)."""
        outer = self.budget()
        now = self._clock()
        ends = now + seconds if outer is None else min(now + seconds, outer.ends)
        budget = Budget(started=now, ends=ends, clock=self._clock)
        self._current.budget = budget
        try:
            yield budget
        finally:
            self._current.budget = outer

    def cap(self, timeout: float | None, expired: type[Exception]) -> float | None:
        """``timeout`` cut to what is left of the budget; ``expired`` raised once nothing is."""
        budget = self.budget()
        if budget is None:
            return timeout
        left = budget.remaining()
        if left <= 0:
            raise expired("the call's deadline has passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation ends by the deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout=self._deadline.cap(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout=self._deadline.cap(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(
            ssl_context,
            server_hostname=server_hostname,
            timeout=self._deadline.cap(timeout, httpcore.ConnectTimeout),
        )
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """Opens connections whose connect and stream operations all end by the deadline."""

    def __init__(self, deadline: Deadline, inner: httpcore.NetworkBackend | None = None) -> None:
        self._deadline = deadline
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host,
            port,
            timeout=self._deadline.cap(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineBody(httpx.SyncByteStream):
    """A response body that stops asking for chunks once the deadline has passed."""

    def __init__(self, inner: httpx.SyncByteStream, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._inner)
        while True:
            self._deadline.cap(None, httpx.ReadTimeout)
            chunk = next(chunks, None)
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        self._inner.close()


class DeadlineTransport(httpx.BaseTransport):
    """Any transport, held to the deadline where a transport can see it: before sending (nothing
    has left yet, so a ``ConnectTimeout``) and between response body chunks."""

    def __init__(self, inner: httpx.BaseTransport, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._deadline.cap(None, httpx.ConnectTimeout)
        response = self._inner.handle_request(request)
        if isinstance(response.stream, httpx.SyncByteStream):
            response.stream = _DeadlineBody(response.stream, self._deadline)
        return response

    def close(self) -> None:
        self._inner.close()


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


class BackendTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connection pool connects through the given network backend.

    httpx does not expose httpcore's ``network_backend``, so the pool the base class builds is
    replaced by an equivalent one that has it (tests/unit/egress/test_pinned.py guards the seam). Proxies
    from the environment are never used: a proxy would open the connections itself.
    """

    def __init__(
        self,
        network_backend: httpcore.NetworkBackend,
        *,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
    ) -> None:
        ssl_context = (
            _verified_context()
            if verify is True
            else httpx.create_ssl_context(verify=verify, trust_env=False)
        )
        limits = limits or httpx.Limits()
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=network_backend,
        )


class PinnedTransport(BackendTransport):
    """A transport whose connections go through a ``PinnedBackend`` for ``checked``."""

    def __init__(
        self,
        checked: CheckedUrl,
        *,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
        network_backend: httpcore.NetworkBackend | None = None,
    ) -> None:
        pinned = PinnedBackend(
            host=_client_host(checked),
            port=checked.port,
            addresses=checked.addresses,
            inner=network_backend,
        )
        super().__init__(pinned, verify=verify, limits=limits)
        self.checked = checked


def deadline_transport(
    deadline: Deadline, *, inner: httpx.BaseTransport | None = None, limits: httpx.Limits | None = None
) -> httpx.BaseTransport:
    """A transport held to ``deadline``: at every socket operation, or around ``inner`` if given."""
    if inner is not None:
        return DeadlineTransport(inner, deadline)
    return DeadlineTransport(BackendTransport(DeadlineBackend(deadline), limits=limits), deadline)


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
    deadline: Deadline | None = None,
) -> httpx.Client:
    """An httpx client that reaches only ``checked``'s origin, at its checked addresses.

    With ``max_redirects`` 0 (the default) no redirect is followed; otherwise redirects within the
    origin are, and one to anywhere else fails to connect (``httpx.ConnectError``). With a
    ``deadline``, every call made inside ``deadline.within(...)`` ends by its budget.
    """
    transport: httpx.BaseTransport
    if deadline is None:
        transport = PinnedTransport(checked, verify=verify)
    else:
        pinned = PinnedTransport(checked, verify=verify, network_backend=DeadlineBackend(deadline))
        transport = DeadlineTransport(pinned, deadline)
    return httpx.Client(
        transport=transport,
        timeout=timeout,
        follow_redirects=max_redirects > 0,
        max_redirects=max_redirects,
        trust_env=False,
    )
