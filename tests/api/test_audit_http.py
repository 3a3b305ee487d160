"""What bounds a caller of the HTTP API: no secret kept in the clear by Idempotency-Key, test
webhooks that cannot starve other tenants, failed authentication limited per address, slow
clients cut off, numbers parsed strictly, and no traceback in the API's log."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
import requests
from cryptography.fernet import Fernet

from tests.support.api import ApiServer, assert_problem
from tests.support.env import REDIS_PORT
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until


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


def new_key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def random_api_key() -> str:
    return "ehk_" + secrets.token_urlsafe(32)


# --- Idempotency-Key answers keep no secret in the clear --------------------------------------

# An endpoint secret or an API key, in the shape each is handed out.
SECRET = re.compile(rb"whsec_[A-Za-z0-9+/=]{16,}|ehk_[A-Za-z0-9_-]{43}")
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")


def redis_contents() -> list[bytes]:
    """Every key name and every value in every database of the test Redis."""
    contents: list[bytes] = []
    for db in range(16):
        client = redis.Redis(port=REDIS_PORT, db=db)
        for name in client.scan_iter(count=1000):
            kind = client.type(name)
            if kind == b"string":
                values = [client.get(name) or b""]
            elif kind == b"hash":
                values = [b"%s=%s" % kv for kv in client.hgetall(name).items()]
            elif kind == b"list":
                values = list(client.lrange(name, 0, -1))
            elif kind in (b"set", b"zset"):
                values = list(
                    client.zrange(name, 0, -1) if kind == b"zset" else client.smembers(name)
                )
            else:
                values = [client.dump(name) or b""]
            contents += [name, *values]
        client.close()
    return contents


def readable_forms(raw: bytes) -> Iterator[bytes]:
    """The value and what each base64-looking run in it decodes to: a secret in base64 is a
    secret in the clear."""
    yield raw
    for run in BASE64_RUN.findall(raw):
        padded = run.rstrip(b"=") + b"=" * (-len(run.rstrip(b"=")) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                yield decode(padded)
            except (binascii.Error, ValueError):
                continue


def post_secrets_with_keys(
    server: ApiServer, tenants: dict[str, Any], operator_key: str
) -> list[tuple[str, str, Any, dict[str, str], requests.Response]]:
    """Every POST whose answer carries a secret or a key, each with an Idempotency-Key."""
    a, b = tenants["a"], tenants["b"]
    calls = [
        (a["key"], "/v1/endpoints", {"url": "http://127.0.0.1:9/idempotent"}),
        (a["key"], f"/v1/endpoints/{a['endpoint']}/rotate-secret", {"grace_s": 60}),
        (operator_key, "/v1/applications", {"name": "C"}),
        (operator_key, f"/v1/applications/{b['app']}/rotate-key", None),
    ]
    answered = []
    for key, path, body in calls:
        header = new_key()
        first = server.call("POST", path, key, json=body, headers=header)
        assert first.status_code in (200, 201), first.text
        answered.append((key, path, body, header, first))
    return answered


def assert_no_secret_in_redis_and_the_same_replay(
    server: ApiServer, tenants: dict[str, Any], operator_key: str
) -> None:
    answered = post_secrets_with_keys(server, tenants, operator_key)
    handed_out = [
        (first.json().get("secret") or first.json()["api_key"]).encode() for *_, first in answered
    ]
    contents = redis_contents()
    assert any(b"idempotency" in c for c in contents)  # the answers are kept
    leaks = [
        form[:200]
        for raw in contents
        for form in readable_forms(raw)
        if SECRET.search(form) or any(secret in form for secret in handed_out)
    ]
    assert leaks == []
    for key, path, body, header, first in answered:
        again = server.call("POST", path, key, json=body, headers=header)
        assert again.status_code == first.status_code and again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"


def test_kept_answers_hold_no_plaintext_secret_without_secret_keys(
    api: ApiServer, tenants: dict[str, Any], operator_key: str
) -> None:
    assert_no_secret_in_redis_and_the_same_replay(api, tenants, operator_key)


def test_kept_answers_hold_no_plaintext_secret_with_secret_keys(
    database: str, redis_server: str, tenants: dict[str, Any], operator_key: str
) -> None:
    env = {"ETHHOOK_API_RATE_LIMIT": "0", "ETHHOOK_SECRET_KEYS": Fernet.generate_key().decode()}
    with serving(env) as server:
        assert_no_secret_in_redis_and_the_same_replay(server, tenants, operator_key)


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


# --- numbers in paths, queries and headers are parsed strictly --------------------------------


def test_numbers_and_keys_in_requests_are_plain_ascii(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    key = tenants["a"]["key"]
    endpoint = tenants["a"]["endpoint"]
    for path in (f"/v1/endpoints/{endpoint}_0", "/v1/endpoints/+1", "/v1/endpoints/1.0"):
        assert_problem(api.call("GET", path, key), 422, "invalid-request", "digits")
    for limit in ("1_0", "+5", " 5", "5.0", "\u0665"):
        answer = api.call("GET", "/v1/endpoints", key, params={"limit": limit})
        assert_problem(answer, 422, "invalid-request", "digits")
    assert api.call("GET", "/v1/endpoints", key, params={"limit": "05"}).status_code == 200
    odd = {"Idempotency-Key": "clé-1".encode().decode("latin-1")}
    answer = api.call("POST", f"/v1/endpoints/{endpoint}/enable", key, headers=odd)
    assert_problem(answer, 400, "invalid-idempotency-key", "printable ASCII")


# --- a request the server stops under is answered, without a traceback -------------------------


def test_a_request_cut_off_by_a_stop_is_answered_503_and_logged_in_one_line(
    database: str, redis_server: str, tenants: dict[str, Any], receiver: Receiver
) -> None:
    release = threading.Event()

    def slow(_: int) -> tuple[int, dict[str, str], bytes]:
        release.wait(20)
        return 200, {}, b"ok"

    receiver.responders["/slow"] = slow
    key = tenants["a"]["key"]
    env = {"ETHHOOK_API_SHUTDOWN_GRACE_S": "1", "ETHHOOK_DELIVERY_READ_TIMEOUT_S": "20"}
    answers: list[requests.Response] = []
    try:
        with serving(env) as server:
            created = server.call("POST", "/v1/endpoints", key, json={"url": receiver.url("/slow")})
            sender = threading.Thread(
                target=send_test, args=(server, key, created.json()["id"], answers)
            )
            sender.start()
            wait_until(lambda: receiver.on("/slow"), 10, what="the test webhook to be under way")
            server.stop()  # SIGTERM: the test is still waiting for its receiver
            sender.join(15)
    finally:
        release.set()
    assert_problem(answers[0], 503, "shutting-down", "stopped before")
    assert "api.request.cancelled" in server.log()
