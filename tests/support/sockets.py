"""A raw TCP server on loopback that answers each connection with a handler's bytes, for HTTP
clients' edge cases that a well-behaved server would never put on the wire."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator


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
