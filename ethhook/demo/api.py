"""The demo's HTTP API and console (`--keep-running`): `ethhook api` on a loopback port, and the
lines that tell a visitor where it is and which key opens it."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from ethhook.demo.devchain import free_port
from ethhook.supervise import Child, ethhook

HEALTH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class DemoApi:
    """Where the demo's API listens, and the key of the application the demo's endpoint is in."""

    port: int
    key: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hints(self) -> str:
        return (
            f"  console {self.url}/console/  key {self.key}\n"
            f'  curl -H "Authorization: Bearer {self.key}" '
            f"'{self.url}/v1/deliveries?limit=5'"
        )


def api_port(preferred: int) -> int:
    """`preferred` (ETHHOOK_API_PORT, 8080 unless set) if it is free on 127.0.0.1, else any free
    port: a demo must not fail because something else already serves 8080."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def api_child(port: int) -> Child:
    """`ethhook api` on loopback only, whatever ETHHOOK_API_HOST says."""
    return Child("api", ethhook("api", "--host", "127.0.0.1", "--port", str(port)))


def wait_for_health(url: str, stop: threading.Event, timeout_s: float = HEALTH_TIMEOUT_S) -> bool:
    """True once GET `url`/health answers 200; False after `timeout_s` or when stopped."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass  # not listening yet, or its database not ready: ask again
        stop.wait(0.2)
    return False
