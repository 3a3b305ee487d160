"""A loopback JSON-RPC proxy in front of a node that can refuse `eth_getLogs` (every other call
goes through): the listener then sees the head move but cannot read its logs, and falls behind."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests


class RefusingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.refuse_logs = False
        self.refused = 0
        proxy = self
        session = requests.Session()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                answer = proxy._answer(session, body)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _answer(self, session: requests.Session, body: bytes) -> bytes:
        calls = json.loads(body)
        batch = isinstance(calls, list)
        calls = calls if batch else [calls]
        if self.refuse_logs and any(c.get("method") == "eth_getLogs" for c in calls):
            self.refused += 1
            error = {"code": -32000, "message": "eth_getLogs refused by the test's proxy"}
            answers = [{"jsonrpc": "2.0", "id": c.get("id"), "error": error} for c in calls]
            return json.dumps(answers if batch else answers[0]).encode()
        upstream = session.post(
            self.upstream, data=body, headers={"content-type": "application/json"}, timeout=30
        )
        return upstream.content

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
