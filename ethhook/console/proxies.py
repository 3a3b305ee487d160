"""Who sent a request and over which scheme: X-Forwarded-For and X-Forwarded-Proto are believed
only when the peer is one of ETHHOOK_TRUSTED_PROXIES (anyone else can write those headers)."""

from __future__ import annotations

import ipaddress

from fastapi import Request

from ethhook.config import IpNetwork

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: IpAddress | None, proxies: tuple[IpNetwork, ...]) -> bool:
    return address is not None and any(address in network for network in proxies)


def _header_values(request: Request, name: str) -> list[str]:
    """A list-valued header's entries in order, over every copy of the header."""
    return [v.strip() for line in request.headers.getlist(name) for v in line.split(",")]


def client_address(request: Request, proxies: tuple[IpNetwork, ...]) -> str:
    """The address the request came from: the peer's, or, behind trusted proxies, the nearest
    address in X-Forwarded-For that is not one of them (the ones before it are the client's own
    say, and could be anything)."""
    peer = request.client.host if request.client else ""
    address = _address(peer)
    if not _trusted(address, proxies):
        return peer
    for hop in reversed(_header_values(request, "x-forwarded-for")):
        forwarded = _address(hop)
        if forwarded is None:
            break  # a malformed hop: what lies beyond it cannot be believed either
        address = forwarded
        if not _trusted(address, proxies):
            break
    return str(address)


def came_over_https(request: Request, proxies: tuple[IpNetwork, ...]) -> bool:
    """Whether the visitor's browser used HTTPS: to this server, or to a trusted proxy that says
    so in X-Forwarded-Proto (its own entry, the last one)."""
    if request.url.scheme == "https":
        return True
    if not _trusted(_address(request.client.host if request.client else ""), proxies):
        return False
    scheme = _header_values(request, "x-forwarded-proto")
    return bool(scheme) and scheme[-1].lower() == "https"
