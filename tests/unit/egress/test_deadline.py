"""maskgate.egress.pinned's deadlines: every network operation inside ``Deadline.within`` gets at most what
is left of the budget, and none starts once it is spent. A fake clock and fake streams record it."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterable

import httpcore
import httpx
import pytest

from maskgate.egress.pinned import Deadline, DeadlineBackend, DeadlineTransport
from tests.support.fakes import Clock


class RecordingStream(httpcore.NetworkStream):
    """Records the timeout of each operation; reading advances the clock by ``cost``."""

    def __init__(self, clock: Clock[float], cost: float) -> None:
        self.clock = clock
        self.cost = cost
        self.timeouts: list[tuple[str, float | None]] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.timeouts.append(("read", timeout))
        self.clock.now += self.cost
        return b"x"

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.timeouts.append(("write", timeout))

    def close(self) -> None:
        pass

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self.timeouts.append(("tls", timeout))
        return self

    def get_extra_info(self, info: str) -> object:
        return f"info:{info}"


class RecordingBackend(httpcore.NetworkBackend):
    def __init__(self, stream: RecordingStream) -> None:
        self.stream = stream
        self.connect_timeouts: list[float | None] = []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        self.connect_timeouts.append(timeout)
        return self.stream


@pytest.fixture
def clock() -> Clock[float]:
    return Clock(100.0)


def _backend(clock: Clock[float], cost: float = 0.0) -> tuple[Deadline, RecordingBackend, DeadlineBackend]:
    deadline = Deadline(clock=clock)
    inner = RecordingBackend(RecordingStream(clock, cost))
    return deadline, inner, DeadlineBackend(deadline, inner=inner)


def test_deadline_backend_outside_a_budget_passes_timeouts_through(clock):
    _, inner, backend = _backend(clock)

    stream = backend.connect_tcp("h", 1, timeout=5.0)
    stream.read(10, timeout=7.0)

    assert inner.connect_timeouts == [5.0]
    assert inner.stream.timeouts == [("read", 7.0)]


def test_deadline_backend_cuts_each_operation_to_what_is_left(clock):
    deadline, inner, backend = _backend(clock, cost=0.75)

    with deadline.within(2.0):
        stream = backend.connect_tcp("h", 1, timeout=5.0)
        stream.write(b"req", timeout=10.0)
        stream.read(1, timeout=10.0)  # the clock moves 0.75 s per read
        stream.read(1, timeout=10.0)
        stream.read(1, timeout=0.1)  # a shorter per-operation timeout still wins

    assert inner.connect_timeouts == [2.0]
    assert inner.stream.timeouts == [("write", 2.0), ("read", 2.0), ("read", 1.25), ("read", 0.1)]


def test_deadline_backend_starts_no_read_once_the_budget_is_spent(clock):
    deadline, inner, backend = _backend(clock, cost=1.0)

    with deadline.within(2.0):
        stream = backend.connect_tcp("h", 1, timeout=5.0)
        stream.read(1)
        stream.read(1)
        with pytest.raises(httpcore.ReadTimeout):
            stream.read(1)
        with pytest.raises(httpcore.WriteTimeout):
            stream.write(b"more")

    assert len(inner.stream.timeouts) == 2


def test_deadline_backend_refuses_to_connect_once_the_budget_is_spent(clock):
    deadline, inner, backend = _backend(clock)

    with deadline.within(1.0), pytest.raises(httpcore.ConnectTimeout):
        clock.now += 1.0
        backend.connect_tcp("h", 1)

    assert inner.connect_timeouts == []


def test_deadline_backend_holds_the_tls_stream_to_the_same_budget(clock):
    deadline, inner, backend = _backend(clock, cost=0.5)

    with deadline.within(3.0):
        plain = backend.connect_tcp("h", 443)
        clock.now += 1.0
        tls = plain.start_tls(ssl.create_default_context(), server_hostname="h", timeout=5.0)
        tls.read(1, timeout=10.0)

    assert inner.stream.timeouts == [("tls", 2.0), ("read", 2.0)]
    assert tls.get_extra_info("is_readable") == "info:is_readable"


def test_deadline_within_a_nested_budget_never_extends_the_outer_one(clock):
    deadline = Deadline(clock=clock)

    with deadline.within(2.0) as outer:
        with deadline.within(10.0) as inner:
            assert inner.ends == outer.ends
        with deadline.within(0.5) as shorter:
            assert shorter.ends == 100.5
        assert deadline.budget() is outer
    assert deadline.budget() is None


def test_deadline_budget_is_per_thread(clock):
    deadline = Deadline(clock=clock)
    seen: list[object] = []

    with deadline.within(1.0):
        thread = threading.Thread(target=lambda: seen.append(deadline.budget()))
        thread.start()
        thread.join()

    assert seen == [None]


def test_deadline_transport_sends_nothing_once_the_budget_is_spent(clock):
    deadline = Deadline(clock=clock)
    sent: list[httpx.Request] = []
    transport = DeadlineTransport(
        httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200)), deadline
    )

    with deadline.within(1.0), httpx.Client(transport=transport) as client:
        clock.now += 1.0
        with pytest.raises(httpx.ConnectTimeout):
            client.get("http://h/")

    assert sent == []


def test_deadline_transport_stops_between_body_chunks(clock):
    deadline = Deadline(clock=clock)

    def chunks():
        for _ in range(10):
            clock.now += 0.4
            yield b"x"

    transport = DeadlineTransport(
        httpx.MockTransport(lambda _: httpx.Response(200, content=chunks())), deadline
    )

    with deadline.within(1.0), httpx.Client(transport=transport) as client:
        with client.stream("GET", "http://h/") as response, pytest.raises(httpx.ReadTimeout):
            response.read()
