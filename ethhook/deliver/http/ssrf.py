"""SSRF guard: refuse private, loopback, link-local, CGNAT and metadata addresses, and port 0.

Checked at registration (after resolving the host) and again at connect time, on the address the
socket actually connects to, so a DNS answer that changes between the two cannot get through.
An IPv6 address that carries an IPv4 address inside it (IPv4-mapped and -compatible, 6to4, NAT64,
Teredo) is judged by the IPv4 address too: the network delivers it there.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from ethhook.exceptions import InputError

log = logging.getLogger(__name__)

ALLOW_HINT = "set ETHHOOK_ALLOW_PRIVATE_TARGETS=true to allow it"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ForbiddenTarget(OSError):
    """A connection to a non-public address was refused."""


_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated, but some stacks still route it
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix: v4 in the last 32 bits
# RFC 8215 local-use NAT64: where the IPv4 address sits depends on the operator's prefix length,
# so no address inside it can be judged by its IPv4 part; none of them is public anyway.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address reaches through a translation or tunnel mechanism."""
    if ip.ipv4_mapped is not None:  # ::ffff:0:0/96
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:  # 2002::/16, the IPv4 address in bits 16..48
        return [ip.sixtofour]
    if ip.teredo is not None:  # 2001::/32: the server in bits 32..64, the client XORed at the end
        return list(ip.teredo)
    last32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64:
        return [last32]
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # not :: (unspecified) nor ::1 (loopback)
        return [last32]
    return []


def forbidden_port(port: int | None) -> str | None:
    """Why connecting to `port` is refused: port 0 is no server's port (stacks differ on what a
    connect to it does, and urllib3 turns it into the scheme's default port in places)."""
    return "port 0, which no server listens on" if port == 0 else None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why connecting to `ip` is refused, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _LOCAL_NAT64:
            return "a local-use NAT64 address"
        inner = embedded_ipv4(ip)
        for v4 in inner:
            reason = forbidden_reason(v4)
            if reason:
                return f"an IPv6 address that leads to {v4}, {reason}"
        if inner and (ip.ipv4_mapped is not None or ip in _NAT64):
            # A translation, not a tunnel: the public IPv4 host is where the connection goes
            # (DNS64 answers 64:ff9b::… for every IPv4-only host on an IPv6-only network).
            return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip in ipaddress.ip_network("100.64.0.0/10"):
        return "a carrier-grade NAT address"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return "not a public address"
    return None


def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    """getaddrinfo; a name it cannot even encode (an empty label, one over 63 characters) fails
    to resolve like any other, instead of raising UnicodeError past both HTTP clients."""
    try:
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise socket.gaierror(socket.EAI_NONAME, f"not a valid host name ({exc})") from None


def addresses(host: str, port: int) -> Iterator[IPAddress]:
    """The addresses `host` resolves to, in order, unjudged (where private targets are allowed)."""
    for _family, _, _, _, sockaddr in resolve(host, port):
        yield ipaddress.ip_address(sockaddr[0])


def check_url(url: str) -> None:
    """Registration-time check: refuse a URL whose host is or resolves to a non-public address.

    A host that does not resolve yet is accepted; the connect-time check still applies.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            found = list(addresses(host, port))
        except socket.gaierror:
            return
    for ip in found:
        reason = forbidden_reason(ip)
        if reason:
            log.info("endpoint.url.refused host=%s address=%s reason=%s", host, ip, reason)
            raise InputError(f"refused URL {url!r}: {refusal(host, ip, reason)}; {ALLOW_HINT}")


def refusal(host: str, ip: IPAddress, reason: str) -> str:
    """Why `host` is refused, as its owner may be told: an address typed as such is named with
    its reason; a host name is not, or the message would tell what an internal name resolves to
    (the log has it)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return f"{host} resolves to an address that is not allowed (not a public one)"
    return f"{ip} is {reason}"


def checked_addresses(host: str, dns_host: str, port: int) -> Iterator[IPAddress]:
    """The addresses `dns_host` resolves to, in order, each judged just before the caller tries it.

    Raises ForbiddenTarget for port 0 and at the first non-public address (`host` names the
    target in the message). Every guarded connection of both clients is opened through this.
    """
    port_reason = forbidden_port(port)
    if port_reason:
        raise ForbiddenTarget(f"refused to connect to {host}: {port_reason}")
    for ip in addresses(dns_host, port):
        reason = forbidden_reason(ip)
        if reason:
            log.warning("deliver.ssrf.refused host=%s address=%s reason=%s", host, ip, reason)
            said = refusal(host, ip, reason)
            raise ForbiddenTarget(f"refused to connect to {host}: {said}; {ALLOW_HINT}")
        yield ip
