"""Who sent a request and over which scheme: forwarded headers count only from trusted proxies."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from ethhook.config import load_settings
from ethhook.console.proxies import came_over_https, client_address
from ethhook.console.throttle import counted_as

PROXIES = load_settings({"ETHHOOK_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1"}).trusted_proxies


def request(peer: str, *headers: tuple[str, str], scheme: str = "http") -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": scheme,
            "path": "/console/sign-in",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
            "client": (peer, 50000),
            "server": ("127.0.0.1", 8080),
        }
    )


@pytest.mark.parametrize(
    ("peer", "headers", "address"),
    [
        # Anyone may write X-Forwarded-For: from an untrusted peer it is ignored.
        ("203.0.113.9", [("X-Forwarded-For", "198.51.100.1")], "203.0.113.9"),
        ("10.1.2.3", [("X-Forwarded-For", "198.51.100.1")], "198.51.100.1"),
        # The client's own entries come first: the nearest untrusted one is the client.
        ("10.1.2.3", [("X-Forwarded-For", "1.1.1.1, 198.51.100.1, 192.168.1.1")], "198.51.100.1"),
        ("10.1.2.3", [("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "2.2.2.2")], "2.2.2.2"),
        ("10.1.2.3", [("X-Forwarded-For", "198.51.100.1, junk")], "10.1.2.3"),
        ("10.1.2.3", [("X-Forwarded-For", "10.9.9.9")], "10.9.9.9"),
        ("10.1.2.3", [], "10.1.2.3"),
    ],
)
def test_the_client_address_believes_only_trusted_proxies(peer, headers, address):
    assert client_address(request(peer, *headers), PROXIES) == address


def test_https_is_the_connections_or_a_trusted_proxys_word():
    forwarded = ("X-Forwarded-Proto", "https")
    assert came_over_https(request("203.0.113.9", scheme="https"), ())
    assert not came_over_https(request("203.0.113.9", forwarded), PROXIES)
    assert not came_over_https(request("127.0.0.1", forwarded), ())
    assert came_over_https(request("10.1.2.3", forwarded), PROXIES)
    assert came_over_https(request("10.1.2.3", ("X-Forwarded-Proto", "http, HTTPS")), PROXIES)
    assert not came_over_https(request("10.1.2.3", ("X-Forwarded-Proto", "https, http")), PROXIES)
    assert not came_over_https(request("10.1.2.3"), PROXIES)


def test_ipv6_clients_are_counted_per_64():
    assert counted_as("2001:db8:1:2:aaaa::1") == counted_as("2001:db8:1:2:bbbb::7")
    assert counted_as("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert counted_as("2001:db8:1:3::1") != counted_as("2001:db8:1:2::1")
    assert counted_as("198.51.100.7") == "198.51.100.7"
    assert counted_as("testclient") == "testclient"
