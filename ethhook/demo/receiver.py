"""The demo's built-in webhook receiver: verifies every signature and times every arrival.

A test webhook (`endpoint.test`, sent from the console or the API while the demo keeps running) is
verified and answered 200 like any other, but counted apart: it carries no chain event.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ethhook.deliver.signing import verify
from ethhook.service.testsend import TEST_KIND

TOLERANCE_S = 300  # Standard Webhooks' ±5 minutes


class DemoReceiver:
    def __init__(self, secret: str = "") -> None:
        self.secret = secret
        self.lock = threading.Lock()
        self.ids: set[str] = set()
        self.duplicates = 0
        self.unverified = 0
        self.tests = 0  # verified endpoint.test webhooks
        self.arrivals: dict[str, float] = {}  # webhook-id → arrival time
        self.tx_of: dict[str, str] = {}  # webhook-id → transaction hash
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = receiver.accept(dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accept(self, headers: dict[str, str], body: bytes) -> int:
        now = time.time()
        h = {k.lower(): v for k, v in headers.items()}
        msg_id, stamp, signature = (
            h.get("webhook-id", ""),
            h.get("webhook-timestamp", ""),
            h.get("webhook-signature", ""),
        )
        ok = (
            bool(self.secret)
            and re.fullmatch(r"[0-9]{1,12}", stamp) is not None
            and abs(now - int(stamp)) <= TOLERANCE_S
            and verify(self.secret, msg_id, int(stamp), body, signature)
        )
        with self.lock:
            if not ok:
                self.unverified += 1
                return 401
            data = json.loads(body)
            if data["type"] == TEST_KIND:
                self.tests += 1
                return 200
            if msg_id in self.ids:
                self.duplicates += 1
                return 200
            self.ids.add(msg_id)
            self.arrivals[msg_id] = now
            self.tx_of[msg_id] = data["data"]["transaction_hash"]
        return 200

    def count(self) -> int:
        with self.lock:
            return len(self.ids)

    def latencies_ms(self, sent_at: dict[str, float]) -> list[float]:
        with self.lock:
            return sorted(
                (self.arrivals[i] - sent_at[tx]) * 1000
                for i, tx in self.tx_of.items()
                if tx in sent_at
            )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
