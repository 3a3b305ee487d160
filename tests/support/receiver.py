"""A loopback HTTP receiver for tests: records every request and verifies its signature.

It also counts what a client's protections bound: requests in flight at once (per path) and the
TCP connections it accepted.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

# (status, headers, body) for a request number on a path.
Responder = Callable[[int], tuple[int, dict[str, str], bytes]]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    verified: bool | None = None
    status: int | None = None  # what the receiver answered (None while it is still answering)
    done: float | None = None  # when the answer was ready to send (time.time(), like `at`)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


def verify_v1a(public_key: str, headers: dict[str, str], body: bytes) -> list[bool]:
    """For each `v1a,` signature of the `webhook-signature` header (lower-case names), whether
    the `whpk_…` key verifies it over "id.timestamp.body": Standard Webhooks' Ed25519 scheme,
    written here with `cryptography` alone (not EthHook's code)."""
    assert public_key.startswith("whpk_"), public_key
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key[len("whpk_") :]))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    results = []
    for candidate in headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(signature, validate=True), signed)
            results.append(True)
        except (InvalidSignature, ValueError):
            results.append(False)
    return results


@dataclass
class Receiver:
    """Answers 200 unless told otherwise for a path; `secrets[path]` (a `whsec_` secret) or
    `public_keys[path]` (an ed25519 endpoint's `whpk_` key) turns on verification."""

    secrets: dict[str, str] = field(default_factory=dict)
    public_keys: dict[str, str] = field(default_factory=dict)
    responders: dict[str, Responder] = field(default_factory=dict)
    # Answers that depend on the request itself (its body, its headers): asked before `responders`.
    answers: dict[str, Callable[[Received], tuple[int, dict[str, str], bytes]]] = field(
        default_factory=dict
    )
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._most_in_flight: dict[str, int] = {}
        self._open_connections = 0
        self.connections_accepted = 0
        self.most_open_connections = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:  # once per accepted TCP connection
                super().setup()
                receiver._connection_opened()

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    receiver._connection_closed()

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                status, headers, answer = receiver._handle(
                    self.path, dict(self.headers.items()), body
                )
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up (a timeout, a killed worker)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        lower = {k.lower(): v for k, v in headers.items()}
        verified = None
        if path in self.secrets:
            try:
                Webhook(self.secrets[path]).verify(body, lower)
                verified = True
            except WebhookVerificationError:
                verified = False
        elif path in self.public_keys:
            verified = any(verify_v1a(self.public_keys[path], lower, body))
        received = Received(path, lower, body, time.time(), verified)
        with self._lock:
            number = self._counts.get(path, 0)
            self._counts[path] = number + 1
            self.requests.append(received)
            in_flight = self._in_flight.get(path, 0) + 1
            self._in_flight[path] = in_flight
            self._most_in_flight[path] = max(self._most_in_flight.get(path, 0), in_flight)
        try:
            responder = self.responders.get(path)
            if path in self.answers:
                status, headers, answer = self.answers[path](received)
            elif responder is None:
                status, headers, answer = 200, {}, b"ok"
            else:
                status, headers, answer = responder(number)
        finally:
            with self._lock:
                self._in_flight[path] -= 1
        received.done = time.time()
        received.status = status
        return status, headers, answer

    def _connection_opened(self) -> None:
        with self._lock:
            self.connections_accepted += 1
            self._open_connections += 1
            self.most_open_connections = max(self.most_open_connections, self._open_connections)

    def _connection_closed(self) -> None:
        with self._lock:
            self._open_connections -= 1

    def most_in_flight(self, path: str) -> int:
        """The most requests to `path` the receiver was answering at once."""
        with self._lock:
            return self._most_in_flight.get(path, 0)

    def on(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
