"""URL safety for addresses maskgate will call or hand to WaveSpeed (DESIGN §7).

In AWS a webhook URL must be https and resolve only to public addresses; the local stack allows
http and loopback, and nothing else. (Pinning the connection to the checked address arrives with
the webhook hardening work; here the check runs at submit and again before each send.)
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import SplitResult, urlsplit

from maskgate.errors import UrlNotAllowed

Resolver = Callable[[str], list[str]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def resolve(host: str) -> list[str]:
    """Every address the host resolves to."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise UrlNotAllowed(f"host {host!r} does not resolve") from exc
    return sorted({str(info[4][0]) for info in infos})


def _unwrapped(address: IpAddress) -> IpAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.packed[:12] == bytes(12) and int(address) > 1:  # IPv4-compatible ::a.b.c.d
            return ipaddress.IPv4Address(address.packed[12:])
    return address


def is_public(address: str) -> bool:
    """True only for globally routable unicast addresses (and not their mapped/compatible forms)."""
    ip = _unwrapped(ipaddress.ip_address(address))
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local)


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split(url: str) -> SplitResult:
    """``urlsplit`` that refuses malformed URLs (``https://[::1/x``) with UrlNotAllowed."""
    try:
        parts = urlsplit(url)
        _ = parts.hostname, parts.port
    except ValueError as exc:
        raise UrlNotAllowed("the URL is malformed") from exc
    return parts


def check_outbound_url(url: str, *, local: bool, resolver: Resolver = resolve) -> str:
    """Return the URL if maskgate may call it, else raise UrlNotAllowed."""
    parts = split(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise UrlNotAllowed("the URL must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise UrlNotAllowed("the URL must not carry credentials")
    if local:
        if not _is_loopback_host(host):
            raise UrlNotAllowed("the local stack calls loopback URLs only (127.0.0.1, localhost, ::1)")
        return url
    if parts.scheme != "https":
        raise UrlNotAllowed("the URL must use https")
    addresses = resolver(host)
    if not addresses or not all(is_public(a) for a in addresses):
        raise UrlNotAllowed(f"host {host!r} resolves to an address that is not public")
    return url


def check_image_url(url: str, *, local: bool) -> str:
    """An image URL WaveSpeed fetches: https in AWS (http too on the local stack), no credentials."""
    parts = split(url)
    allowed = ("http", "https") if local else ("https",)
    if parts.scheme not in allowed or not parts.hostname or parts.username or parts.password:
        raise UrlNotAllowed("image must be an https URL without credentials, or a data: URI")
    return url
