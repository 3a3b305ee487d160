"""Over which scheme a request came: X-Forwarded-Proto counts only from trusted proxies."""

from __future__ import annotations

from starlette.requests import Request

from ethhook.config import load_settings
from ethhook.console.proxies import came_over_https

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


def test_https_is_the_connections_or_a_trusted_proxys_word():
    forwarded = ("X-Forwarded-Proto", "https")
    assert came_over_https(request("203.0.113.9", scheme="https"), ())
    assert not came_over_https(request("203.0.113.9", forwarded), PROXIES)
    assert not came_over_https(request("127.0.0.1", forwarded), ())
    assert came_over_https(request("10.1.2.3", forwarded), PROXIES)
    assert came_over_https(request("10.1.2.3", ("X-Forwarded-Proto", "http, HTTPS")), PROXIES)
    assert not came_over_https(request("10.1.2.3", ("X-Forwarded-Proto", "https, http")), PROXIES)
    assert not came_over_https(request("10.1.2.3"), PROXIES)
