"""What bounds a caller of the HTTP API: test webhooks that cannot starve other tenants, failed
authentication limited per address, slow clients cut off, and no traceback in the API's log."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from tests.api.conftest import ApiServer
from tests.api.test_resources import assert_problem
from tests.conftest import wait_until
from tests.receiver import Receiver


@contextmanager
def serving(env: dict[str, str]) -> Iterator[ApiServer]:
    """An `ethhook api` with `env`; after the test, its log must hold no traceback."""
    server = ApiServer(env)
    try:
        yield server
    finally:
        server.stop()
    log = server.log()
    assert "Traceback" not in log, log[log.find("Traceback") - 2000 :][:6000]


def random_api_key() -> str:
    return "ehk_" + secrets.token_urlsafe(32)


# --- test webhooks: bounded per key and in all, off the shared thread pool --------------------


def send_test(server: ApiServer, key: str, endpoint_id: int, out: list[requests.Response]) -> None:
    """POST .../test on a connection of its own (a thread per request)."""
    headers = {"Authorization": f"Bearer {key}"}
    out.append(requests.post(f"{server.base}/v1/endpoints/{endpoint_id}/test", headers=headers))


def test_test_sends_are_bounded_and_leave_other_tenants_unblocked(
    database: str, redis_server: str, tenants: dict[str, Any], receiver: Receiver
) -> None:
    env = {
        "ETHHOOK_API_RATE_LIMIT": "0",
        "ETHHOOK_API_TEST_SENDS_PER_KEY": "2",
        "ETHHOOK_API_TEST_SENDS_TOTAL": "3",
        "ETHHOOK_DELIVERY_READ_TIMEOUT_S": "10",  # the receiver answers when the test says
    }
    release = threading.Event()

    def slow(_: int) -> tuple[int, dict[str, str], bytes]:
        release.wait(20)
        return 200, {}, b"ok"

    receiver.responders["/slow-a"] = receiver.responders["/slow-b"] = slow
    a, b = tenants["a"]["key"], tenants["b"]["key"]
    with serving(env) as server:
        ea = server.call("POST", "/v1/endpoints", a, json={"url": receiver.url("/slow-a")})
        eb = server.call("POST", "/v1/endpoints", b, json={"url": receiver.url("/slow-b")})
        by_a: list[requests.Response] = []
        by_b: list[requests.Response] = []
        threads = [
            threading.Thread(target=send_test, args=(server, a, ea.json()["id"], by_a))
            for _ in range(45)
        ]
        for thread in threads:
            thread.start()
        try:
            wait_until(
                lambda: len(by_a) >= 43 or len(receiver.on("/slow-a")) >= 40,
                20,
                what="A's test webhooks to be sent or refused",
            )
            started = time.monotonic()
            listed = server.call("GET", "/v1/endpoints", b)
            elapsed = time.monotonic() - started
            assert listed.status_code == 200 and elapsed < 1.0, f"B waited {elapsed:.2f}s"
            busy = [r for r in by_a if r.status_code == 429]
            assert len(busy) == 43 and len(receiver.on("/slow-a")) == 2
            assert_problem(busy[0], 429, "too-many-in-flight", "2 test webhooks under way")
            assert int(busy[0].headers["retry-after"]) >= 1
            threads.append(
                threading.Thread(target=send_test, args=(server, b, eb.json()["id"], by_b))
            )
            threads[-1].start()
            wait_until(lambda: len(receiver.on("/slow-b")) == 1, 10, what="B's test webhook")
            over = server.call("POST", f"/v1/endpoints/{eb.json()['id']}/test", b)
            assert_problem(over, 429, "too-many-in-flight", "3 test webhooks under way")
        finally:
            release.set()
            for thread in threads:
                thread.join(30)
        sent = [r for r in by_a + by_b if r.status_code != 429]
        assert [r.status_code for r in sent] == [200] * 3 and all(r.json()["ok"] for r in sent)
        again = server.call("POST", f"/v1/endpoints/{ea.json()['id']}/test", a)
        assert again.status_code == 200 and again.json()["ok"]


# --- requests without a valid key are limited per client address -----------------------------


def test_requests_without_a_valid_key_are_limited_per_address(
    database: str, redis_server: str, tenants: dict[str, Any]
) -> None:
    env = {"ETHHOOK_API_AUTH_FAILURE_RATE": "0.5", "ETHHOOK_API_AUTH_FAILURE_BURST": "5"}
    key = tenants["a"]["key"]
    with serving(env) as server:
        for _ in range(8):  # valid keys are limited per key, not here
            assert server.call("GET", "/v1/endpoints", key).status_code == 200
        failed = [server.call("GET", "/v1/endpoints", random_api_key()) for _ in range(3)]
        failed += [server.call("GET", "/v1/endpoints", "not-a-key"), server.call("GET", "/v1")]
        assert [f.status_code for f in failed] == [401] * 5
        limited = server.call("GET", "/v1/endpoints", random_api_key())
        assert_problem(limited, 429, "too-many-auth-failures", "without a valid API key")
        wait_s = int(limited.headers["retry-after"])
        assert 1 <= wait_s <= 2
        # Refused before any key is looked up: a valid key from this address waits too.
        assert_problem(server.call("GET", "/v1/endpoints", key), 429, "too-many-auth-failures")
        metrics = server.call("GET", "/metrics").text
        assert 'route="/v1/endpoints",status="429"} 2.0' in metrics
        valid = lambda: server.call("GET", "/v1/endpoints", key).status_code == 200  # noqa: E731
        wait_until(valid, wait_s + 2, 0.2, what="the address to be let in again")


# --- slow clients are cut off -----------------------------------------------------------------

SLOW_ENV = {
    "ETHHOOK_API_HEADER_TIMEOUT_S": "1",
    "ETHHOOK_API_BODY_TIMEOUT_S": "1",
    "ETHHOOK_API_MAX_CONNECTIONS": "5",
}


def trickle(
    port: int, head: bytes, drip: bytes, give_up_s: float = 8
) -> tuple[float | None, bytes]:
    """Send `head`, then `drip` a byte every 0.1 s; (seconds until the server closed the
    connection or None if it never did, what it answered)."""
    started = time.monotonic()
    answer = b""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(0.1)
        sock.sendall(head)
        sent = 0
        while time.monotonic() - started < give_up_s:
            try:
                chunk = sock.recv(65536)
                if not chunk:
                    return time.monotonic() - started, answer
                answer += chunk
            except TimeoutError:
                pass
            except ConnectionResetError:
                return time.monotonic() - started, answer
            if drip:
                try:
                    sock.sendall(drip[sent % len(drip) :][:1])
                    sent += 1
                except (BrokenPipeError, ConnectionResetError):
                    return time.monotonic() - started, answer
    return None, answer


BODY_HEAD = (
    b"POST /v1/endpoints HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100000\r\n\r\n"
)


@pytest.mark.parametrize(
    ("head", "drip", "answer_starts"),
    [
        (b"", b"", b""),  # connects and sends nothing
        (b"GET /health HTTP/1.1\r\nHost: api\r\nX-Slow: ", b"x", b""),  # headers, a byte at a time
        (BODY_HEAD, b"x", b"HTTP/1.1 408 "),  # a declared 100 kB body, a byte at a time
        (
            b"GET /health HTTP/1.1\r\nHost: api\r\nContent-Length: 100000\r\n\r\n",
            b"x",
            b"HTTP/1.1 200 ",
        ),
    ],
    ids=["idle", "headers", "body", "body-after-answer"],
)
def test_slow_clients_are_cut_off(
    database: str, redis_server: str, head: bytes, drip: bytes, answer_starts: bytes
) -> None:
    with serving(SLOW_ENV) as server:
        closed_after, answer = trickle(server.port, head, drip)
        assert closed_after is not None and closed_after < 3, answer
        assert answer.startswith(answer_starts)
        if answer_starts == b"HTTP/1.1 408 ":
            assert b"body-timeout" in answer and b"connection: close" in answer.lower()
        assert requests.get(f"{server.base}/health", timeout=5).status_code == 200


def test_connections_over_the_limit_are_refused(database: str, redis_server: str) -> None:
    with serving(SLOW_ENV) as server:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
        try:
            refused = requests.get(f"{server.base}/health", timeout=5)
            assert refused.status_code == 503
        finally:
            for sock in idle:
                sock.close()
        up = lambda: requests.get(f"{server.base}/health", timeout=5).status_code == 200  # noqa: E731
        wait_until(up, 5, what="the API to take connections again")
