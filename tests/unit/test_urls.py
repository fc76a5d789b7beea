"""maskgate.urls: outbound URL safety (DESIGN §7). DNS is always injected: no network."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from maskgate import urls
from maskgate.errors import UrlNotAllowed
from maskgate.urls import check_image_url, check_outbound_url


def _resolving_to(*addresses: str) -> Callable[[str], list[str]]:
    def resolver(host: str) -> list[str]:
        return list(addresses)

    return resolver


def _never_resolve(host: str) -> list[str]:
    raise AssertionError(f"resolved {host!r}, but this check must not resolve")


# --- local mode: loopback http(s) only -------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "https://127.0.0.1/hooks",
        "http://localhost:3000/hooks?x=1",
        "http://LOCALHOST/hooks",
        "http://[::1]:9000/hooks",
        "https://[::1]/",
    ],
)
def test_check_outbound_url_local_allows_loopback(url):
    assert check_outbound_url(url, local=True, resolver=_never_resolve) == url


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://example.com/hooks", id="public-name"),
        pytest.param("http://93.184.215.14/hooks", id="public-ip"),
        pytest.param("http://10.0.0.1/hooks", id="private-ip"),
        pytest.param("http://192.168.1.10/hooks", id="lan-ip"),
        pytest.param("http://169.254.169.254/latest/meta-data/", id="metadata-ip"),
        pytest.param("http://0.0.0.0:3000/hooks", id="unspecified"),
        pytest.param("http://[::]:3000/hooks", id="unspecified-v6"),
        pytest.param("http://localhost.example.com/hooks", id="localhost-prefix"),
        pytest.param("http://127.0.0.1.nip.io/hooks", id="loopback-lookalike"),
        pytest.param("http://0x7f000001/hooks", id="hex-ip"),
        pytest.param("http://2130706433/hooks", id="decimal-ip"),
    ],
)
def test_check_outbound_url_local_refuses_non_loopback(url):
    with pytest.raises(UrlNotAllowed):
        check_outbound_url(url, local=True, resolver=_never_resolve)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ftp://127.0.0.1/hooks", id="ftp"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("gopher://127.0.0.1:70/", id="gopher"),
        pytest.param("ws://127.0.0.1/hooks", id="ws"),
        pytest.param("127.0.0.1:8080/hooks", id="no-scheme"),
        pytest.param("//127.0.0.1/hooks", id="scheme-relative"),
        pytest.param("http:///hooks", id="no-host"),
        pytest.param("", id="empty"),
    ],
)
@pytest.mark.parametrize("local", [True, False])
def test_check_outbound_url_refuses_non_http_urls(url, local):
    with pytest.raises(UrlNotAllowed):
        check_outbound_url(url, local=local, resolver=_resolving_to("93.184.215.14"))


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://user:pw@{host}/hooks", id="user-password"),
        pytest.param("https://user@{host}/hooks", id="user"),
        pytest.param("https://:pw@{host}/hooks", id="password"),
    ],
)
@pytest.mark.parametrize(("local", "host"), [(True, "127.0.0.1"), (False, "example.com")])
def test_check_outbound_url_refuses_credentials(url, local, host):
    with pytest.raises(UrlNotAllowed):
        check_outbound_url(url.format(host=host), local=local, resolver=_resolving_to("93.184.215.14"))


# --- aws mode: https to public addresses only ------------------------------------------------

REFUSED_ADDRESSES = [
    pytest.param("127.0.0.1", id="loopback"),
    pytest.param("127.1.2.3", id="loopback-8"),
    pytest.param("::1", id="loopback-v6"),
    pytest.param("10.0.0.1", id="10/8"),
    pytest.param("10.255.255.254", id="10/8-top"),
    pytest.param("172.16.0.1", id="172.16/12"),
    pytest.param("172.31.255.254", id="172.16/12-top"),
    pytest.param("192.168.0.1", id="192.168/16"),
    pytest.param("169.254.169.254", id="aws-metadata"),
    pytest.param("169.254.0.1", id="link-local"),
    pytest.param("fd00:ec2::254", id="aws-metadata-v6"),
    pytest.param("fe80::1", id="link-local-v6"),
    pytest.param("fc00::1", id="unique-local-v6"),
    pytest.param("100.64.0.1", id="cgnat-bottom"),
    pytest.param("100.127.255.254", id="cgnat-top"),
    pytest.param("224.0.0.1", id="multicast"),
    pytest.param("239.255.255.250", id="multicast-ssdp"),
    pytest.param("ff02::1", id="multicast-v6"),
    pytest.param("0.0.0.0", id="unspecified"),  # noqa: S104 (an address under test, not a bind)
    pytest.param("::", id="unspecified-v6"),
    pytest.param("240.0.0.1", id="reserved-240/4"),
    pytest.param("255.255.255.255", id="broadcast"),
    pytest.param("192.0.2.1", id="documentation"),
    pytest.param("2001:db8::1", id="documentation-v6"),
    pytest.param("::ffff:127.0.0.1", id="v4-mapped-loopback"),
    pytest.param("::ffff:10.0.0.1", id="v4-mapped-private"),
    pytest.param("::ffff:169.254.169.254", id="v4-mapped-metadata"),
    pytest.param("::ffff:100.64.0.1", id="v4-mapped-cgnat"),
    pytest.param("::127.0.0.1", id="v4-compatible-loopback"),
    pytest.param("::10.0.0.1", id="v4-compatible-private"),
    pytest.param("::169.254.169.254", id="v4-compatible-metadata"),
]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_check_outbound_url_aws_refuses_non_public_address(address):
    with pytest.raises(UrlNotAllowed):
        check_outbound_url("https://hooks.example.com/in", local=False, resolver=_resolving_to(address))


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "8.8.8.8",
        "1.1.1.1",
        "172.32.0.1",  # just above 172.16/12
        "172.15.255.254",  # just below 172.16/12
        "100.128.0.1",  # just above CGNAT
        "100.63.255.254",  # just below CGNAT
        "192.169.0.1",
        "2606:4700::1111",
        "2a00:1450:4001:81b::200e",
    ],
)
def test_check_outbound_url_aws_allows_public_address(address):
    url = "https://hooks.example.com/in"

    assert check_outbound_url(url, local=False, resolver=_resolving_to(address)) == url


def test_check_outbound_url_aws_allows_several_public_addresses():
    resolver = _resolving_to("93.184.215.14", "2606:4700::1111")

    assert check_outbound_url("https://hooks.example.com/", local=False, resolver=resolver)


@pytest.mark.parametrize(
    "addresses",
    [
        pytest.param(("93.184.215.14", "10.0.0.1"), id="public-then-private"),
        pytest.param(("127.0.0.1", "93.184.215.14"), id="loopback-then-public"),
        pytest.param(("2606:4700::1111", "::1"), id="v6-public-then-loopback"),
        pytest.param(("93.184.215.14", "fd00:ec2::254"), id="public-then-metadata-v6"),
    ],
)
def test_check_outbound_url_aws_refuses_mixed_resolution(addresses):
    with pytest.raises(UrlNotAllowed):
        check_outbound_url("https://hooks.example.com/", local=False, resolver=_resolving_to(*addresses))


def test_check_outbound_url_aws_refuses_host_resolving_to_nothing():
    with pytest.raises(UrlNotAllowed):
        check_outbound_url("https://hooks.example.com/", local=False, resolver=_resolving_to())


def test_check_outbound_url_aws_refuses_http():
    with pytest.raises(UrlNotAllowed):
        check_outbound_url("http://hooks.example.com/", local=False, resolver=_resolving_to("93.184.215.14"))


@pytest.mark.parametrize(
    "url",
    ["https://localhost/hooks", "https://127.0.0.1/hooks", "https://[::1]/hooks"],
)
def test_check_outbound_url_aws_refuses_loopback_literals(url):
    def resolver(host: str) -> list[str]:
        return {"localhost": ["127.0.0.1", "::1"]}.get(host, [host])

    with pytest.raises(UrlNotAllowed):
        check_outbound_url(url, local=False, resolver=resolver)


def test_check_outbound_url_aws_resolves_the_bare_lowercased_host():
    seen: list[str] = []

    def resolver(host: str) -> list[str]:
        seen.append(host)
        return ["93.184.215.14"]

    check_outbound_url("https://Hooks.Example.COM:8443/path?q=1#frag", local=False, resolver=resolver)

    assert seen == ["hooks.example.com"]


def test_check_outbound_url_aws_passes_resolver_errors_on():
    def resolver(host: str) -> list[str]:
        raise UrlNotAllowed(f"host {host!r} does not resolve")

    with pytest.raises(UrlNotAllowed):
        check_outbound_url("https://nowhere.invalid/", local=False, resolver=resolver)


@pytest.mark.parametrize("local", [True, False])
def test_check_outbound_url_refuses_malformed_ipv6_literal(local):
    with pytest.raises(UrlNotAllowed):
        check_outbound_url("https://[::1/hooks", local=local, resolver=_resolving_to("93.184.215.14"))


# --- resolve (socket.getaddrinfo replaced) ---------------------------------------------------


def test_resolve_returns_every_distinct_address(monkeypatch):
    def fake_getaddrinfo(host, port, proto=0):
        tcp = socket.IPPROTO_TCP
        return [
            (socket.AF_INET, socket.SOCK_STREAM, tcp, "", ("93.184.215.14", 0)),
            (socket.AF_INET6, socket.SOCK_STREAM, tcp, "", ("2606:4700::1111", 0, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, tcp, "", ("93.184.215.14", 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)

    assert sorted(urls.resolve("example.com")) == ["2606:4700::1111", "93.184.215.14"]


def test_resolve_turns_lookup_failure_into_url_not_allowed(monkeypatch):
    def fake_getaddrinfo(host, port, proto=0):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)

    with pytest.raises(UrlNotAllowed):
        urls.resolve("nowhere.invalid")


# --- check_image_url -------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "https://cdn.example.com:8443/a/b.jpg?sig=1"])
def test_check_image_url_aws_allows_https(url):
    assert check_image_url(url, local=False) == url


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://example.com/cat.png", id="http"),
        pytest.param("ftp://example.com/cat.png", id="ftp"),
        pytest.param("file:///tmp/cat.png", id="file"),
        pytest.param("https://user:pw@example.com/cat.png", id="credentials"),
        pytest.param("https:///cat.png", id="no-host"),
        pytest.param("data:image/png;base64,iVBORw0KGgo=", id="data-uri"),
        pytest.param("cat.png", id="relative"),
    ],
)
def test_check_image_url_aws_refuses(url):
    with pytest.raises(UrlNotAllowed):
        check_image_url(url, local=False)


@pytest.mark.parametrize("url", ["http://127.0.0.1:5100/cat.png", "https://example.com/cat.png"])
def test_check_image_url_local_allows_http_and_https(url):
    assert check_image_url(url, local=True) == url


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/cat.png", "http://u:p@127.0.0.1/cat.png", "http:///cat.png"]
)
def test_check_image_url_local_refuses(url):
    with pytest.raises(UrlNotAllowed):
        check_image_url(url, local=True)


def test_check_image_url_refuses_malformed_ipv6_literal():
    with pytest.raises(UrlNotAllowed):
        check_image_url("https://[::1/cat.png", local=False)
