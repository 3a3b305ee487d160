"""Loopback stand-ins between the listener and anvil: a TCP proxy that can sever every connection
or hold them all silent, and a JSON-RPC server that forwards to anvil but answers garbage, errors
and timeouts on demand."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target port (HTTP and WebSocket alike: anvil serves both on
    one port). `sever()` drops every connection and refuses new ones until `restore()`; `hold()`
    keeps every connection open but forwards no byte either way, new connections accepted and
    held too, until `release()` (a node that hangs: no answers, no heads)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.severed = False
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._running = True
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.severed:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                # Held: this chunk waits here, and what follows it in the kernel's buffers. A
                # close is still passed on (an abandoned connection must not pile up meanwhile).
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def sever(self) -> None:
        self.severed = True
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def restore(self) -> None:
        self.severed = False

    @property
    def held(self) -> bool:
        return not self._flowing.is_set()

    def hold(self) -> None:
        self._flowing.clear()

    def release(self) -> None:
        """Forward again, in order, everything held meanwhile."""
        self._flowing.set()

    def close(self) -> None:
        self._running = False
        self.sever()
        self._flowing.set()  # held pipes find their sockets closed and end
        self.listener.close()


Fault = str  # "garbage" | "error" | "timeout" | "bad_log" | "http_500"


class FakeRpc:
    """A JSON-RPC endpoint on loopback in front of anvil's HTTP port.

    * `max_range`: eth_getLogs over more blocks than this is refused like a hosted provider does.
    * `inject(method, fault)`: the next call of `method` gets that fault (one fault per call).
    * `hold_block(n)`: every eth_getLogs range containing block n fails until `release()`.
    """

    def __init__(self, upstream: str, max_range: int = 5, timeout_s: float = 3.0) -> None:
        self.upstream = upstream
        self.max_range = max_range
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.faults: list[tuple[str, Fault]] = []
        self.served: list[tuple[str, Fault | None]] = []
        self.held: int | None = None
        self.max_logs_block_served = -1
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status, answer = fake._answer(body)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                try:
                    self.wfile.write(answer)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def inject(self, method: str, fault: Fault) -> None:
        with self._lock:
            self.faults.append((method, fault))

    def pending_faults(self) -> int:
        with self._lock:
            return len(self.faults)

    def hold_block(self, number: int) -> None:
        self.held = number

    def release(self) -> None:
        self.held = None

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            for i, (m, fault) in enumerate(self.faults):
                if m == method:
                    del self.faults[i]
                    return fault
        return None

    def _answer(self, body: bytes) -> tuple[int, bytes]:
        request = json.loads(body)
        calls = request if isinstance(request, list) else [request]
        method = calls[0]["method"]
        fault = self._take_fault(method)
        with self._lock:
            self.served.append((method, fault))
        if fault == "garbage":
            return 200, b"<html>502 Bad Gateway</html>"
        if fault == "http_500":
            return 500, b"internal server error"
        if fault == "timeout":
            time.sleep(self.timeout_s)
        if fault == "error":
            return 200, self._error(request, -32000, "header not found")
        if method == "eth_getLogs":
            query = calls[0]["params"][0]
            start, end = int(query["fromBlock"], 16), int(query["toBlock"], 16)
            if end - start + 1 > self.max_range:
                return 200, self._error(
                    request, -32005, f"query exceeds max block range {self.max_range}"
                )
            if self.held is not None and start <= self.held <= end:
                return 200, self._error(request, -32000, "backend unavailable")
        answer = self.session.post(
            self.upstream, data=body, headers={"content-type": "application/json"}, timeout=30
        )
        if method == "eth_getLogs":
            result = answer.json()
            if fault == "bad_log" and result.get("result"):
                result["result"][0]["blockHash"] = "0xnothex"
                return 200, json.dumps(result).encode()
            if fault is None and "result" in result:
                self.max_logs_block_served = max(self.max_logs_block_served, end)
        return 200, answer.content

    @staticmethod
    def _error(request: Any, code: int, message: str) -> bytes:
        def one(call: dict[str, Any]) -> dict[str, Any]:
            return {
                "jsonrpc": "2.0",
                "id": call.get("id"),
                "error": {"code": code, "message": message},
            }

        if isinstance(request, list):
            return json.dumps([one(c) for c in request]).encode()
        return json.dumps(one(request)).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_quiet(predicate: Callable[[], bool], seconds: float) -> None:
    """Assert that predicate() stays true for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate()
        time.sleep(0.1)
