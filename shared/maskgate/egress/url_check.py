"""URL safety for addresses maskgate will call or hand to WaveSpeed.

In AWS a webhook URL must be https and its host must resolve only to public addresses: one loopback,
private, link-local, CGNAT, multicast, reserved or documentation address among them refuses the URL,
and so does an IPv6 form that embeds such an IPv4 address (mapped, compatible, NAT64, 6to4).
The local stack allows http(s) to loopback only (127.0.0.0/8, ::1, ``localhost``), resolving nothing.

A host spelled like an IPv4 number that is not canonical dotted-quad (``2130706433``, ``0x7f.1``,
``0177.0.0.1``, ``127.1``) is refused without asking DNS: resolvers read those as addresses.
``resolve_checked`` returns the addresses it checked, so the caller can connect to exactly those
(``maskgate.egress.pinned``) instead of resolving again and meeting a rebinding DNS answer.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import idna

from maskgate.errors import UrlNotAllowed

Resolver = Callable[[str], list[str]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Refused even where ``is_global`` says otherwise (multicast, 6to4 relays) or varies by Python patch.
_V4_REFUSED = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    )
)  # fmt: skip
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
# Inside 2000::/3 yet not plain unicast: IETF protocol assignments (Teredo, benchmarking, ORCHID),
# documentation (old and new).
_V6_REFUSED = tuple(ipaddress.IPv6Network(net) for net in ("2001::/23", "2001:db8::/32", "3fff::/20"))
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOOPBACK_V6 = ipaddress.IPv6Address("::1")
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_ATON_PART = (
    (re.compile(r"0x([0-9a-f]*)"), 16),
    (re.compile(r"0([0-7]+)"), 8),
    (re.compile(r"([1-9][0-9]*|0)"), 10),
)


@dataclass(frozen=True)
class CheckedUrl:
    """A URL that passed the check, with every address its host resolved to (each one checked).

    ``host`` is what the HTTP client puts in ``Host`` and TLS SNI: lowercase ASCII (IDNA), IPv6
    without brackets. ``port`` is explicit or the scheme's default.
    """

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def resolve(host: str) -> list[str]:
    """Every address the host resolves to."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise UrlNotAllowed(f"host {host!r} does not resolve") from exc
    return sorted({str(info[4][0]) for info in infos})


def _embedded_v4(address: IpAddress) -> IpAddress:
    """The IPv4 address an IPv6 form carries (mapped, compatible, NAT64, 6to4), else the address."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _V4_COMPATIBLE and int(address) > 1):  # :: and ::1 stay v6
        return ipaddress.IPv4Address(address.packed[12:])
    return address


def is_public(address: str) -> bool:
    """True only for globally routable unicast addresses (and IPv6 forms embedding one)."""
    if "%" in address:  # a zone index only makes sense for link-local and loopback
        return False
    try:
        ip = _embedded_v4(ipaddress.ip_address(address))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return ip.is_global and not any(ip in net for net in _V4_REFUSED)
    return ip in _V6_GLOBAL_UNICAST and ip.is_global and not any(ip in net for net in _V6_REFUSED)


def split(url: str) -> SplitResult:
    """``urlsplit`` that refuses malformed URLs (``https://[::1/x``) with UrlNotAllowed.

    Whitespace, control characters and backslashes are refused outright: parsers disagree on them
    (``urlsplit`` drops tabs, browsers read ``\\`` as ``/``), and a URL means one thing here.
    """
    if _UNSAFE_CHARS.search(url):
        raise UrlNotAllowed("the URL must not contain whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        _ = parts.hostname, parts.port
    except ValueError as exc:
        raise UrlNotAllowed("the URL is malformed") from exc
    return parts


def _ascii_host(parts: SplitResult) -> str:
    """The host as the HTTP client will send it: lowercase, IDNA-encoded, IPv6 without brackets."""
    host = (parts.hostname or "").lower()
    if host.isascii():
        return host
    try:
        return idna.encode(host).decode("ascii")  # as httpx encodes it
    except idna.IDNAError as exc:
        raise UrlNotAllowed(f"host {host!r} is not a valid internationalized name") from exc


def _aton_number(label: str) -> int:
    for pattern, base in _ATON_PART:
        match = pattern.fullmatch(label)
        if match:
            return int(match.group(1) or "0", base)
    raise UrlNotAllowed(f"{label!r} is not a number")


def _inet_aton(labels: list[str]) -> ipaddress.IPv4Address:
    """``inet_aton``'s reading of ``a``, ``a.b``, ``a.b.c``, ``a.b.c.d`` (decimal, 0-octal, 0x-hex)."""
    if len(labels) > 4:
        raise UrlNotAllowed("too many parts for an IPv4 address")
    *head, last = [_aton_number(label) for label in labels]
    if any(part > 255 for part in head) or last >= 256 ** (4 - len(head)):
        raise UrlNotAllowed("an IPv4 address part is out of range")
    value = last
    for index, part in enumerate(head):
        value += part << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ip_literal(host: str) -> IpAddress | None:
    """The address a host spells, or None for a name; odd IPv4 spellings raise UrlNotAllowed."""
    if ":" in host:  # urlsplit only lets an IPv6 literal (in brackets) carry colons here
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise UrlNotAllowed(f"host {host!r} is not a valid IPv6 address") from exc
        if address.scope_id:
            raise UrlNotAllowed("IPv6 zone indexes are not allowed")
        return address
    labels = host.removesuffix(".").split(".")
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):  # WHATWG: a host ending in a number is IPv4
        return None
    try:
        address4 = _inet_aton(labels)
    except UrlNotAllowed as exc:
        raise UrlNotAllowed(f"host {host!r} is not a valid IPv4 address") from exc
    if str(address4) != host:
        raise UrlNotAllowed(f"host {host!r} is a non-canonical spelling of {address4}; write it dotted-quad")
    return address4


def _check_name(host: str) -> None:
    name = host.removesuffix(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise UrlNotAllowed(f"host {host!r} is not a valid host name")
    if name == "localhost" or name.endswith(".localhost"):  # RFC 6761: always loopback
        raise UrlNotAllowed("localhost URLs are not allowed")


def _loopback_addresses(host: str, literal: IpAddress | None) -> tuple[str, ...]:
    if host == "localhost":
        return ("127.0.0.1", "::1")
    if literal == _LOOPBACK_V6 or (isinstance(literal, ipaddress.IPv4Address) and literal.is_loopback):
        return (str(literal),)
    raise UrlNotAllowed("the local stack calls loopback URLs only (127.0.0.1, localhost, ::1)")


def _public_addresses(host: str, literal: IpAddress | None, resolver: Resolver) -> tuple[str, ...]:
    if literal is not None:
        addresses = [str(literal)]
    else:
        _check_name(host)
        addresses = resolver(host)
    if not addresses or not all(is_public(a) for a in addresses):
        raise UrlNotAllowed(f"host {host!r} resolves to an address that is not public")
    return tuple(dict.fromkeys(str(ipaddress.ip_address(a)) for a in addresses))


def _port(parts: SplitResult) -> int:
    port = parts.port
    if port is None:
        return _DEFAULT_PORTS[parts.scheme]
    if not 1 <= port <= 65535:
        raise UrlNotAllowed("the URL's port must be between 1 and 65535")
    return port


def resolve_checked(url: str, *, local: bool, resolver: Resolver = resolve) -> CheckedUrl:
    """Check the URL and return it with the addresses to connect to, else raise UrlNotAllowed."""
    parts = split(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise UrlNotAllowed("the URL must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowed("the URL must not carry credentials")
    if not local and parts.scheme != "https":
        raise UrlNotAllowed("the URL must use https")
    host = _ascii_host(parts)
    port = _port(parts)
    literal = _ip_literal(host)
    if local:
        addresses = _loopback_addresses(host, literal)
    else:
        addresses = _public_addresses(host, literal, resolver)
    return CheckedUrl(url=url, scheme=parts.scheme, host=host, port=port, addresses=addresses)


def check_outbound_url(url: str, *, local: bool, resolver: Resolver = resolve) -> str:
    """Return the URL if maskgate may call it, else raise UrlNotAllowed."""
    return resolve_checked(url, local=local, resolver=resolver).url


def check_image_url(url: str, *, local: bool) -> str:
    """An image URL WaveSpeed fetches: https in AWS; on the local stack http(s) to loopback only
    (where the emulator can fetch it), no credentials.

    Nothing is resolved (WaveSpeed fetches it, not us), but in AWS a host that is a non-public IP
    literal or a localhost name is refused, and odd IPv4 spellings are refused everywhere.
    """
    parts = split(url)
    allowed = ("http", "https") if local else ("https",)
    if parts.scheme not in allowed or not parts.hostname or parts.username is not None or parts.password:
        raise UrlNotAllowed("image must be an https URL without credentials, or a data: URI")
    host = _ascii_host(parts)
    _port(parts)
    literal = _ip_literal(host)
    if local:
        if not (host in ("localhost", "localhost.") or (literal is not None and literal.is_loopback)):
            raise UrlNotAllowed(
                "the local stack fetches loopback image URLs only (127.0.0.1, localhost, ::1)"
            )
        return url
    if literal is None:
        _check_name(host)
    elif not is_public(str(literal)):
        raise UrlNotAllowed("image host is not a public address")
    return url
