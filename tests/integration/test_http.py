"""The hardened POST against hostile receivers on loopback: huge, slow, redirecting, closing.

Every test runs against both clients: urllib3 (threads, no gevent) and geventhttpclient (gevent
workers; called directly here, in the test thread's own gevent hub).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from ethhook.deliver.http import MAX_READ_BYTES, STORED_BODY_BYTES
from ethhook.deliver.http import client as http
from tests.support.sockets import raw_server


@pytest.fixture(params=["urllib3", "gevent"], autouse=True)
def client(request, monkeypatch):
    """Which client `_post` (and `http.post`) uses in this test."""
    chosen = http.post_urllib3 if request.param == "urllib3" else http.post_gevent
    monkeypatch.setattr(http, "green", lambda: request.param == "gevent")
    return chosen


def _post(url: str, read_timeout: float = 1.0, connect_timeout: float = 1.0) -> http.HttpOutcome:
    return http.post(
        url,
        b"{}",
        {"content-type": "application/json"},
        connect_timeout,
        read_timeout,
        allow_private=True,
    )


@pytest.fixture()
def huge() -> Iterator[str]:
    def handler(conn: socket.socket) -> None:
        size = 10 * 1024 * 1024
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        chunk = b"x" * 65536
        for _ in range(size // len(chunk)):
            conn.sendall(chunk)

    yield from raw_server(handler)


def test_a_10_mb_answer_is_read_only_up_to_64_kib(huge):
    outcome = _post(huge)
    assert outcome.ok and outcome.status_code == 200
    assert outcome.body is not None and len(outcome.body) == STORED_BODY_BYTES
    assert MAX_READ_BYTES == 64 * 1024
    assert outcome.duration_ms < 2000


@pytest.fixture()
def trickle() -> Iterator[str]:
    def handler(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 100000\r\n\r\n")
        for _ in range(100):
            conn.sendall(b"z")
            time.sleep(0.1)

    yield from raw_server(handler)


def test_a_receiver_that_trickles_is_cut_off_at_the_read_timeout(trickle):
    started = time.monotonic()
    outcome = _post(trickle, read_timeout=1.0)
    elapsed = time.monotonic() - started
    assert outcome.status_code == 500 and not outcome.ok
    assert outcome.error and "cut off" in outcome.error
    assert elapsed < 3.5


@pytest.fixture()
def hang() -> Iterator[str]:
    yield from raw_server(lambda conn: time.sleep(3))


def test_a_receiver_that_never_answers_times_out(hang):
    outcome = _post(hang, read_timeout=0.5)
    assert outcome.status_code is None
    assert outcome.error == "read timeout after 0.5s"
    assert 400 < outcome.duration_ms < 2500


@pytest.fixture()
def closer() -> Iterator[str]:
    yield from raw_server(lambda conn: conn.close())


def test_a_receiver_that_closes_the_socket_is_a_connection_error(closer):
    outcome = _post(closer)
    assert outcome.status_code is None and outcome.error and "connection" in outcome.error.lower()


@pytest.fixture()
def redirect() -> Iterator[str]:
    def handler(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/elsewhere\r\n"
            b"content-length: 0\r\n\r\n"
        )

    yield from raw_server(handler)


def test_a_redirect_is_a_failure_and_not_followed(redirect):
    outcome = _post(redirect)
    assert outcome.status_code == 302 and not outcome.ok
    assert outcome.error == "redirect 302 to 'http://127.0.0.1:1/elsewhere' not followed"


def test_nothing_listening_is_a_connection_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outcome = _post(f"http://127.0.0.1:{port}/")
    assert outcome.status_code is None and "refused" in (outcome.error or "")


@pytest.fixture()
def keep_alive() -> Iterator[tuple[str, list[int]]]:
    """A receiver that answers every request on a connection; counts the connections accepted."""
    accepted: list[int] = []

    def handler(conn: socket.socket) -> None:
        accepted.append(1)
        while True:
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            if not conn.recv(65536):
                return

    for url in raw_server(handler):
        yield url, accepted


def test_one_connection_serves_requests_one_after_another(keep_alive):
    url, accepted = keep_alive
    outcomes = [_post(url) for _ in range(5)]
    assert [(o.status_code, o.body) for o in outcomes] == [(200, "ok")] * 5
    assert len(accepted) == 1


def test_a_connect_that_is_never_accepted_times_out():
    """A listen queue filled up: Linux drops further SYNs, so connect() waits."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue (backlog 0 holds one or two)
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.1)
        outcome = _post(f"http://127.0.0.1:{port}/hook", connect_timeout=0.3)
    finally:
        for filler in fillers:
            filler.close()
        server.close()
    assert outcome.status_code is None
    assert outcome.error == "connect timeout after 0.3s"
    assert outcome.duration_ms < 2000


def test_many_threads_share_the_pools(keep_alive, client):
    """Without gevent (the CLI, the demo, prefork workers), `post` is called from threads."""
    if client is http.post_gevent:
        pytest.skip("geventhttpclient is for one gevent hub: threads use urllib3")
    url, accepted = keep_alive
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda _: _post(url), range(40)))
    assert all(o.status_code == 200 for o in outcomes)
    assert len(accepted) < 20  # reused: about one connection per thread, not one per request
