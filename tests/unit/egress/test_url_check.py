"""maskgate.egress.url_check: outbound URL safety. DNS is always injected: no network."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from maskgate.egress import url_check
from maskgate.egress.url_check import CheckedUrl, check_image_url, check_outbound_url, resolve_checked
from maskgate.errors import UrlNotAllowed


def _resolving_to(*addresses: str) -> Callable[[str], list[str]]:
    def resolver(host: str) -> list[str]:
        return list(addresses)

    return resolver


def _never_resolve(host: str) -> list[str]:
    raise AssertionError(f"resolved {host!r}, but this check must not resolve")


class RecordingResolver:
    """Answers a public address and remembers every host it was asked about."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses or ["93.184.215.14"])
        self.asked: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        return self.addresses


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
    pytest.param("0.1.2.3", id="this-network-0/8"),
    pytest.param("192.0.0.8", id="ietf-protocol-192.0.0/24"),
    pytest.param("192.88.99.1", id="6to4-relay-anycast"),
    pytest.param("198.18.0.1", id="benchmark-198.18/15"),
    pytest.param("198.19.255.254", id="benchmark-198.18/15-top"),
    pytest.param("198.51.100.7", id="documentation-test-net-2"),
    pytest.param("203.0.113.9", id="documentation-test-net-3"),
    pytest.param("255.255.255.254", id="reserved-240/4-top"),
    pytest.param("fec0::1", id="site-local-v6"),
    pytest.param("fd12:3456::1", id="unique-local-fd-v6"),
    pytest.param("ff0e::1", id="multicast-global-scope-v6"),
    pytest.param("100::1", id="discard-only-v6"),
    pytest.param("2001:2::1", id="benchmark-v6"),
    pytest.param("2001:10::1", id="orchid-v6"),
    pytest.param("3fff::1", id="documentation-3fff-v6"),
    pytest.param("5f00::1", id="srv6-sid-v6"),
    pytest.param("2001:0:4136:e378:8000:63bf:3fff:fdd2", id="teredo"),
    pytest.param("64:ff9b::7f00:1", id="nat64-loopback"),
    pytest.param("64:ff9b::a00:1", id="nat64-private"),
    pytest.param("64:ff9b::a9fe:a9fe", id="nat64-metadata"),
    pytest.param("64:ff9b:1::808:808", id="nat64-local-use"),
    pytest.param("2002:7f00:1::1", id="6to4-loopback"),
    pytest.param("2002:a00:1::1", id="6to4-private"),
    pytest.param("2002:a9fe:a9fe::1", id="6to4-metadata"),
    pytest.param("2002:6440:1::1", id="6to4-cgnat"),
    pytest.param("::ffff:224.0.0.1", id="v4-mapped-multicast"),
    pytest.param("::ffff:0.0.0.0", id="v4-mapped-unspecified"),
    pytest.param("::ffff:255.255.255.255", id="v4-mapped-broadcast"),
    pytest.param("::ffff:0:7f00:1", id="v4-translated-siit"),
    pytest.param("::2", id="v4-compatible-this-network"),
    pytest.param("fe80::1%eth0", id="link-local-with-zone"),
    pytest.param("not-an-address", id="garbage"),
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
        "::ffff:8.8.8.8",  # mapped public v4
        "64:ff9b::808:808",  # NAT64 of a public v4
        "2002:808:808::1",  # 6to4 of a public v4
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

    assert sorted(url_check.resolve("example.com")) == ["2606:4700::1111", "93.184.215.14"]


def test_resolve_turns_lookup_failure_into_url_not_allowed(monkeypatch):
    def fake_getaddrinfo(host, port, proto=0):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)

    with pytest.raises(UrlNotAllowed):
        url_check.resolve("nowhere.invalid")


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


@pytest.mark.parametrize("url", ["http://example.com/cat.png", "https://10.0.0.1/cat.png"])
def test_check_image_url_local_refuses_anything_but_loopback(url):
    with pytest.raises(UrlNotAllowed):
        check_image_url(url, local=True)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:5100/cat.png", "https://localhost/cat.png", "http://[::1]/a.png"]
)
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


# --- resolve_checked: the checked target ------------------------------------------------------


def test_resolve_checked_returns_the_target_with_every_address():
    resolver = RecordingResolver("93.184.215.14", "2606:4700::1111")

    checked = resolve_checked("https://Hooks.Example.com/in?x=1", local=False, resolver=resolver)

    assert checked == CheckedUrl(
        url="https://Hooks.Example.com/in?x=1",
        scheme="https",
        host="hooks.example.com",
        port=443,
        addresses=("93.184.215.14", "2606:4700::1111"),
    )


def test_resolve_checked_keeps_an_explicit_port():
    checked = resolve_checked("https://hooks.example.com:8443/", local=False, resolver=RecordingResolver())

    assert checked.port == 8443


def test_resolve_checked_writes_addresses_canonically_once_each():
    resolver = RecordingResolver("2606:4700:0:0:0:0:0:1111", "2606:4700::1111", "8.8.8.8")

    checked = resolve_checked("https://hooks.example.com/", local=False, resolver=resolver)

    assert checked.addresses == ("2606:4700::1111", "8.8.8.8")


def test_check_outbound_url_returns_the_url_resolve_checked_checked():
    url = "https://hooks.example.com/in"

    assert check_outbound_url(url, local=False, resolver=RecordingResolver()) == url


# --- aws mode: hosts refused before any DNS lookup --------------------------------------------

ODD_IPV4_SPELLINGS = [
    pytest.param("2130706433", id="decimal-loopback"),
    pytest.param("0x7f000001", id="hex-loopback"),
    pytest.param("017700000001", id="octal-loopback"),
    pytest.param("0177.0.0.1", id="octal-part"),
    pytest.param("0x7f.0.0.1", id="hex-part"),
    pytest.param("0X7F.0.0.1", id="hex-part-upper"),
    pytest.param("127.1", id="short-2-parts"),
    pytest.param("127.0.1", id="short-3-parts"),
    pytest.param("0x7f.1", id="short-mixed-hex"),
    pytest.param("0x7f.0.0.0x1", id="mixed-hex"),
    pytest.param("0177.0.0x0.1", id="mixed-octal-hex"),
    pytest.param("127.0.0.01", id="leading-zero"),
    pytest.param("127.0.0.1.", id="trailing-dot"),
    pytest.param("0xa9fea9fe", id="hex-metadata"),
    pytest.param("2852039166", id="decimal-metadata"),
    pytest.param("134744072", id="decimal-public"),  # 8.8.8.8, refused anyway: not canonical
    pytest.param("0x08.8.8.8", id="hex-public"),
    pytest.param("0", id="zero"),
    pytest.param("0x", id="bare-hex-prefix"),
]
MALFORMED_IPV4 = [
    pytest.param("256.0.0.1", id="part-over-255"),
    pytest.param("1.2.3.4.5", id="five-parts"),
    pytest.param("1.2.3.08", id="bad-octal"),
    pytest.param("0xg.0.0.1", id="bad-hex-last-is-number"),
    pytest.param("4294967296", id="over-32-bits"),
    pytest.param("1.16777216", id="short-form-over-range"),
    pytest.param("example.123", id="name-ending-in-number"),
]


@pytest.mark.parametrize("host", ODD_IPV4_SPELLINGS + MALFORMED_IPV4)
def test_resolve_checked_aws_refuses_odd_ipv4_spelling_without_resolving(host):
    resolver = RecordingResolver()

    with pytest.raises(UrlNotAllowed):
        resolve_checked(f"https://{host}/hooks", local=False, resolver=resolver)

    assert resolver.asked == []


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("134744072", "8.8.8.8"),
    ],
)
def test_resolve_checked_names_the_address_an_odd_spelling_means(host, address):
    with pytest.raises(UrlNotAllowed, match=rf"non-canonical spelling of {address}\b"):
        resolve_checked(f"https://{host}/", local=False, resolver=_never_resolve)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://10.0.0.1/hooks", id="private-v4"),
        pytest.param("https://169.254.169.254/latest/meta-data/", id="metadata-v4"),
        pytest.param("https://100.64.0.1/", id="cgnat-v4"),
        pytest.param("https://[fd00:ec2::254]/", id="metadata-v6"),
        pytest.param("https://[::ffff:169.254.169.254]/", id="mapped-metadata"),
        pytest.param("https://[::ffff:7f00:1]/", id="mapped-loopback-hex"),
        pytest.param("https://[64:ff9b::a9fe:a9fe]/", id="nat64-metadata"),
        pytest.param("https://[2002:a9fe:a9fe::]/", id="6to4-metadata"),
        pytest.param("https://[fe80::1%25eth0]/", id="zone-index"),
        pytest.param("https://[::1]/", id="loopback-v6"),
    ],
)
def test_resolve_checked_aws_refuses_non_public_ip_literal_without_resolving(url):
    resolver = RecordingResolver()

    with pytest.raises(UrlNotAllowed):
        resolve_checked(url, local=False, resolver=resolver)

    assert resolver.asked == []


@pytest.mark.parametrize(
    ("url", "address"),
    [("https://93.184.215.14/in", "93.184.215.14"), ("https://[2606:4700::1111]:8443/in", "2606:4700::1111")],
)
def test_resolve_checked_aws_pins_a_public_ip_literal_without_resolving(url, address):
    checked = resolve_checked(url, local=False, resolver=_never_resolve)

    assert (checked.host, checked.addresses) == (address, (address,))


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "localhost.", "LocalHost.", "api.localhost", "api.localhost."]
)
def test_resolve_checked_aws_refuses_localhost_names_without_resolving(host):
    resolver = RecordingResolver()

    with pytest.raises(UrlNotAllowed):
        resolve_checked(f"https://{host}/hooks", local=False, resolver=resolver)

    assert resolver.asked == []


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://-bad.example.com/", id="label-starts-with-hyphen"),
        pytest.param("https://bad-.example.com/", id="label-ends-with-hyphen"),
        pytest.param("https://a..example.com/", id="empty-label"),
        pytest.param("https://example.com../", id="two-trailing-dots"),
        pytest.param(f"https://{'a' * 64}.example.com/", id="label-over-63"),
        pytest.param(f"https://{'a.' * 127}com/", id="name-over-253"),
        pytest.param("https://%31%32%37.0.0.1/", id="percent-encoded-host"),
        pytest.param("https://exa$mple.com/", id="dollar"),
        pytest.param("https://exa mple.com/", id="space"),
        pytest.param("https://example.com\t/", id="tab"),
        pytest.param("https://exam\nple.com/", id="newline"),
        pytest.param("https://example.com\\@127.0.0.1/", id="backslash-userinfo"),
        pytest.param("https://127.0.0.1\\.example.com/", id="backslash-host"),
        pytest.param("https://@example.com/", id="empty-userinfo"),
    ],
)
def test_resolve_checked_aws_refuses_malformed_host_without_resolving(url):
    resolver = RecordingResolver()

    with pytest.raises(UrlNotAllowed):
        resolve_checked(url, local=False, resolver=resolver)

    assert resolver.asked == []


def test_resolve_checked_aws_allows_underscore_and_trailing_dot_names():
    resolver = RecordingResolver()

    checked = resolve_checked("https://_hooks.example.com./in", local=False, resolver=resolver)

    assert (checked.host, resolver.asked) == ("_hooks.example.com.", ["_hooks.example.com."])


def test_resolve_checked_aws_resolves_internationalized_names_as_idna():
    resolver = RecordingResolver()

    checked = resolve_checked("https://Bücher.example/in", local=False, resolver=resolver)

    assert (checked.host, resolver.asked) == ("xn--bcher-kva.example", ["xn--bcher-kva.example"])


def test_resolve_checked_aws_refuses_invalid_internationalized_name():
    with pytest.raises(UrlNotAllowed):
        resolve_checked("https://a\u200db.example/", local=False, resolver=_never_resolve)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://example.com:0/", id="zero"),
        pytest.param("https://example.com:65536/", id="over-65535"),
        pytest.param("https://example.com:+443/", id="signed"),
        pytest.param("https://example.com:44 3/", id="space"),
        pytest.param("https://example.com:0x1bb/", id="hex"),
    ],
)
def test_resolve_checked_refuses_bad_port(url):
    with pytest.raises(UrlNotAllowed):
        resolve_checked(url, local=False, resolver=RecordingResolver())


@pytest.mark.parametrize("port", [1, 65535])
def test_resolve_checked_allows_port_bounds(port):
    checked = resolve_checked(f"https://example.com:{port}/", local=False, resolver=RecordingResolver())

    assert checked.port == port


# --- local mode: the checked target -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port", "addresses"),
    [
        ("http://localhost:8080/hooks", "localhost", 8080, ("127.0.0.1", "::1")),
        ("http://127.0.0.1/hooks", "127.0.0.1", 80, ("127.0.0.1",)),
        ("https://127.8.9.10/hooks", "127.8.9.10", 443, ("127.8.9.10",)),
        ("http://[::1]:9000/hooks", "::1", 9000, ("::1",)),
    ],
)
def test_resolve_checked_local_pins_loopback(url, host, port, addresses):
    checked = resolve_checked(url, local=True, resolver=_never_resolve)

    assert (checked.host, checked.port, checked.addresses) == (host, port, addresses)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://localhost./hooks", id="localhost-trailing-dot"),
        pytest.param("http://api.localhost/hooks", id="localhost-subdomain"),
        pytest.param("http://127.1/hooks", id="short-loopback"),
        pytest.param("http://0177.0.0.1/hooks", id="octal-loopback"),
        pytest.param("http://127.0.0.1./hooks", id="loopback-trailing-dot"),
        pytest.param("http://[::ffff:127.0.0.1]/hooks", id="mapped-loopback"),
        pytest.param("http://[::127.0.0.1]/hooks", id="compatible-loopback"),
        pytest.param("http://[fe80::1]/hooks", id="link-local-v6"),
        pytest.param("http://127.0.0.1:0/hooks", id="port-zero"),
    ],
)
def test_resolve_checked_local_refuses_loopback_lookalikes(url):
    with pytest.raises(UrlNotAllowed):
        resolve_checked(url, local=True, resolver=_never_resolve)


# --- check_image_url: literal checks, nothing resolved ------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://169.254.169.254/cat.png", id="metadata"),
        pytest.param("https://10.0.0.1/cat.png", id="private"),
        pytest.param("https://[::1]/cat.png", id="loopback-v6"),
        pytest.param("https://localhost/cat.png", id="localhost"),
        pytest.param("https://2130706433/cat.png", id="decimal-ip"),
        pytest.param("https://bad-.example.com/cat.png", id="bad-name"),
        pytest.param("https://example.com:0/cat.png", id="port-zero"),
    ],
)
def test_check_image_url_aws_refuses_non_public_hosts(url):
    with pytest.raises(UrlNotAllowed):
        check_image_url(url, local=False)


def test_check_image_url_aws_allows_public_ip_literal():
    url = "https://93.184.215.14/cat.png"

    assert check_image_url(url, local=False) == url


def test_check_image_url_local_allows_localhost():
    url = "http://localhost:5100/cat.png"

    assert check_image_url(url, local=True) == url


def test_check_image_url_local_refuses_odd_ipv4_spelling():
    with pytest.raises(UrlNotAllowed):
        check_image_url("http://0x7f.1:5100/cat.png", local=True)
