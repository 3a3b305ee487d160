"""Flower against the test broker: behind basic auth, it lists the worker and the three queues."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from ethhook.queues import Queue
from tests.support.env import BIN, ROOT, TMP
from tests.support.services import Worker
from tests.support.waiting import free_port, stop_process, wait_until

USER, PASSWORD = "ops", "s3cret-for-tests"


class Flower:
    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = TMP / "flower.log"
        env = os.environ.copy()
        env.pop("FLOWER_UNAUTHENTICATED_API", None)
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "ethhook.celery_app",
                "flower",
                "--address=127.0.0.1",
                f"--port={self.port}",
                f"--basic-auth={USER}:{PASSWORD}",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._healthy, 60, 0.2, what=f"Flower to start (log: {self.log_path})")

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"Flower exited: {self.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.base}/healthcheck", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def get(self, path: str, auth: bool = True) -> tuple[int, Any]:
        request = urllib.request.Request(f"{self.base}{path}")
        if auth:
            token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, None

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


@pytest.fixture()
def flower(worker: Worker) -> Iterator[Flower]:
    f = Flower()
    yield f
    f.stop()


def test_flower_shows_the_worker_and_the_three_queues(flower: Flower, worker: Worker) -> None:
    # Given Flower behind basic auth, when called without credentials, then it refuses.
    status, _ = flower.get("/api/workers", auth=False)
    assert status == 401

    # When asked to refresh its worker list, it finds the test worker consuming all three queues.
    def workers() -> dict[str, Any] | None:
        status, body = flower.get("/api/workers?refresh=1")
        assert status == 200
        found = {name: info for name, info in (body or {}).items() if name.startswith("main@")}
        return found if any(info.get("active_queues") for info in found.values()) else None

    found = wait_until(workers, 30, 0.5, what="Flower to see the test worker")
    (info,) = found.values()
    assert {q["name"] for q in info["active_queues"]} == {q.value for q in Queue}

    # And queue lengths come from the Redis broker, one entry per queue.
    status, body = flower.get("/api/queues/length")
    assert status == 200
    lengths = {q["name"]: q["messages"] for q in body["active_queues"]}
    assert set(lengths) >= {q.value for q in Queue}
    assert all(isinstance(n, int) and n >= 0 for n in lengths.values())
