"""The hardened POST against hostile receivers on loopback: huge, slow, redirecting, closing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from ethhook.deliver import http
from ethhook.deliver.http import MAX_READ_BYTES, STORED_BODY_BYTES


def raw_server(handler: Callable[[socket.socket], None]) -> Iterator[str]:
    """A TCP server on loopback that runs `handler` for each connection (bounded: 20 of them)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(20)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        served = 0
        while not stop.is_set() and served < 20:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            served += 1
            threading.Thread(target=_run, args=(handler, conn), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    thread.join(2)
    server.close()


def _run(handler: Callable[[socket.socket], None], conn: socket.socket) -> None:
    with conn:
        conn.settimeout(10)
        try:
            conn.recv(65536)
            handler(conn)
        except OSError:
            return


def _post(url: str, read_timeout: float = 1.0) -> http.HttpOutcome:
    return http.post(
        url, b"{}", {"content-type": "application/json"}, 1.0, read_timeout, allow_private=True
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
