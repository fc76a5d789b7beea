"""maskgate.egress.pinned: requests go to the checked addresses, never to a fresh DNS answer.

A real loopback server (stdlib ``http.server`` on a free port) answers; ``socket.getaddrinfo`` is
watched so any name lookup shows up. TLS is checked with a fake network backend: no certificates.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore
import httpx
import pytest

from maskgate.egress.pinned import PinnedBackend, PinnedTransport, pinned_client
from maskgate.egress.url_check import CheckedUrl, resolve_checked
from maskgate.errors import UrlNotAllowed

TIMEOUT = httpx.Timeout(5.0)
PINNED_HOST = "pinned-host.invalid"


@dataclass
class LoopbackServer:
    port: int
    seen: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)


def _handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.seen.append((self.path, self.headers["Host"]))
            query = parse_qs(urlsplit(self.path).query)
            if "to" in query:
                self.send_response(302)
                self.send_header("Location", query["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:  # stdlib's name
            pass

    return Handler


def _serve(family: socket.AddressFamily, host: str) -> Iterator[LoopbackServer]:
    class Server(ThreadingHTTPServer):
        address_family = family

    state = LoopbackServer(port=0)
    httpd = Server((host, 0), _handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    yield from _serve(socket.AF_INET, "127.0.0.1")


@pytest.fixture
def server_v6() -> Iterator[LoopbackServer]:
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    yield from _serve(socket.AF_INET6, "::1")


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names passed to ``getaddrinfo``; a name lookup fails, numeric hosts pass through."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def watched(host: str, *args: Any, **kwargs: Any) -> Any:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            asked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "name lookups are not allowed here") from None
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", watched)
    return asked


def _pinned(port: int, *addresses: str, host: str = PINNED_HOST, scheme: str = "http") -> CheckedUrl:
    return CheckedUrl(
        url=f"{scheme}://{host}:{port}/x", scheme=scheme, host=host, port=port, addresses=addresses
    )


# --- a real loopback server -------------------------------------------------------------------


def test_pinned_client_reaches_the_checked_address_without_dns(server, lookups):
    checked = _pinned(server.port, "127.0.0.1")

    with pinned_client(checked, timeout=TIMEOUT) as client:
        response = client.get(checked.url)

    assert (response.status_code, response.text) == (200, "ok")
    assert server.seen == [("/x", f"{PINNED_HOST}:{server.port}")]
    assert lookups == []


def test_pinned_client_does_not_follow_redirects(server, lookups):
    checked = _pinned(server.port, "127.0.0.1")

    with pinned_client(checked, timeout=TIMEOUT) as client:
        response = client.get(f"http://{PINNED_HOST}:{server.port}/x?to=/y")

    assert (response.status_code, response.headers["location"]) == (302, "/y")
    assert [path for path, _ in server.seen] == ["/x?to=/y"]


def test_pinned_client_with_redirects_follows_them_within_the_origin(server, lookups):
    checked = _pinned(server.port, "127.0.0.1")

    with pinned_client(checked, timeout=TIMEOUT, max_redirects=1) as client:
        response = client.get(f"http://{PINNED_HOST}:{server.port}/x?to=/y")

    assert response.status_code == 200
    assert [path for path, _ in server.seen] == ["/x?to=/y", "/y"]
    assert lookups == []


def test_pinned_client_with_redirects_refuses_one_to_another_host(server, lookups):
    checked = _pinned(server.port, "127.0.0.1")
    elsewhere = f"http://elsewhere.invalid:{server.port}/y"

    with (
        pinned_client(checked, timeout=TIMEOUT, max_redirects=1) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get(f"http://{PINNED_HOST}:{server.port}/x?to={elsewhere}")

    assert [path for path, _ in server.seen] == [f"/x?to={elsewhere}"]
    assert lookups == []


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://other-host.invalid:{port}/x", id="other-host"),
        pytest.param("http://127.0.0.1:{port}/x", id="the-address-itself"),
        pytest.param("http://pinned-host.invalid:{other_port}/x", id="other-port"),
    ],
)
def test_pinned_client_refuses_any_other_origin(server, lookups, url):
    checked = _pinned(server.port, "127.0.0.1")

    with pinned_client(checked, timeout=TIMEOUT) as client, pytest.raises(httpx.ConnectError):
        client.get(url.format(port=server.port, other_port=server.port + 1))

    assert server.seen == []
    assert lookups == []


def test_pinned_client_ignores_proxy_settings_in_the_environment(server, lookups, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # discard port: a used proxy would fail
    checked = _pinned(server.port, "127.0.0.1")

    with pinned_client(checked, timeout=TIMEOUT) as client:
        response = client.get(checked.url)

    assert response.status_code == 200


def test_pinned_client_reaches_a_local_ipv4_literal(server, lookups):
    checked = resolve_checked(f"http://127.0.0.1:{server.port}/x", local=True)

    with pinned_client(checked, timeout=TIMEOUT) as client:
        response = client.get(checked.url)

    assert response.status_code == 200
    assert server.seen == [("/x", f"127.0.0.1:{server.port}")]


def test_pinned_client_reaches_localhost_without_resolving_it(server, lookups):
    checked = resolve_checked(f"http://localhost:{server.port}/x", local=True)

    with pinned_client(checked, timeout=TIMEOUT) as client:
        response = client.get(checked.url)

    assert response.status_code == 200
    assert server.seen == [("/x", f"localhost:{server.port}")]
    assert lookups == []


def test_pinned_client_reaches_an_ipv6_loopback_literal(server_v6, lookups):
    checked = resolve_checked(f"http://[::1]:{server_v6.port}/x", local=True)

    with pinned_client(checked, timeout=TIMEOUT) as client:
        response = client.get(checked.url)

    assert response.status_code == 200
    assert server_v6.seen == [("/x", f"[::1]:{server_v6.port}")]


def test_pinned_client_reaches_a_name_pinned_to_ipv6_loopback(server_v6, lookups):
    checked = _pinned(server_v6.port, "::1")

    with pinned_client(checked, timeout=TIMEOUT) as client:
        response = client.get(checked.url)

    assert response.status_code == 200
    assert server_v6.seen == [("/x", f"{PINNED_HOST}:{server_v6.port}")]
    assert lookups == []


# --- a fake network backend: what httpcore is asked to do -------------------------------------


class FakeStream(httpcore.NetworkStream):
    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.written = b""
        self.tls: list[tuple[ssl.SSLContext, str | None]] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        chunk, self.reply = self.reply[:max_bytes], self.reply[max_bytes:]
        return chunk

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.written += buffer

    def close(self) -> None:
        pass

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> FakeStream:
        self.tls.append((ssl_context, server_hostname))
        return self

    def get_extra_info(self, info: str) -> None:  # no TLS object: plain HTTP/1.1
        return None


class FakeBackend(httpcore.NetworkBackend):
    """Refuses the addresses in ``down``; otherwise hands out a stream answering 200."""

    def __init__(self, *, down: tuple[str, ...] = ()) -> None:
        self.down = down
        self.connects: list[tuple[str, int]] = []
        self.streams: list[FakeStream] = []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        self.connects.append((host, port))
        if host in self.down:
            raise httpcore.ConnectError(f"{host} is down")
        self.streams.append(FakeStream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        return self.streams[-1]


def _fake_client(checked: CheckedUrl, backend: FakeBackend) -> httpx.Client:
    transport = PinnedTransport(checked, network_backend=backend)
    return httpx.Client(transport=transport, timeout=TIMEOUT, trust_env=False)


def test_pinned_transport_keeps_sni_and_host_header_on_the_original_name(lookups):
    checked = CheckedUrl(
        url="https://hooks.example.com/in",
        scheme="https",
        host="hooks.example.com",
        port=443,
        addresses=("93.184.215.14",),
    )
    backend = FakeBackend()

    with _fake_client(checked, backend) as client:
        response = client.post(checked.url, content=b"{}")

    assert response.status_code == 200
    assert backend.connects == [("93.184.215.14", 443)]
    [stream] = backend.streams
    [(context, server_hostname)] = stream.tls
    assert server_hostname == "hooks.example.com"
    assert (context.check_hostname, context.verify_mode) == (True, ssl.CERT_REQUIRED)
    assert stream.written.startswith(b"POST /in HTTP/1.1\r\nHost: hooks.example.com\r\n")
    assert lookups == []


def test_pinned_transport_tries_the_next_checked_address_when_one_is_down():
    checked = _pinned(8080, "93.184.215.14", "2606:4700::1111")
    backend = FakeBackend(down=("93.184.215.14",))

    with _fake_client(checked, backend) as client:
        response = client.get(checked.url)

    assert response.status_code == 200
    assert backend.connects == [("93.184.215.14", 8080), ("2606:4700::1111", 8080)]


def test_pinned_transport_fails_when_every_checked_address_is_down():
    checked = _pinned(8080, "93.184.215.14", "2606:4700::1111")
    backend = FakeBackend(down=checked.addresses)

    with _fake_client(checked, backend) as client, pytest.raises(httpx.ConnectError):
        client.get(checked.url)


def test_pinned_backend_refuses_an_origin_it_was_not_built_for():
    backend = PinnedBackend(
        host="hooks.example.com", port=443, addresses=("93.184.215.14",), inner=FakeBackend()
    )

    with pytest.raises(httpcore.ConnectError):
        backend.connect_tcp("169.254.169.254", 443)


def test_pinned_client_refuses_a_checked_url_whose_host_httpx_reads_differently():
    checked = CheckedUrl(
        url="https://elsewhere.example.com/in",
        scheme="https",
        host="hooks.example.com",
        port=443,
        addresses=("93.184.215.14",),
    )

    with pytest.raises(UrlNotAllowed):
        pinned_client(checked, timeout=TIMEOUT)
