"""Replay jobs on a gevent worker that takes every queue (`-P gevent -Q match,deliver,maintenance`):
several jobs' chunks read the node at once in one process, and every job finishes."""

from __future__ import annotations

import collections
import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.chain import Token, build_chain
from tests.support.db import job_row
from tests.support.endpoints import add_endpoint
from tests.support.env import BIN
from tests.support.factories import TRANSFER
from tests.support.fixtures import session_worker_without
from tests.support.services import Worker
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]

JOBS = 4
NODE_LATENCY_S = 0.2


class SlowNode:
    """A loopback JSON-RPC proxy that answers each call NODE_LATENCY_S late, as a remote node does:
    the chunks of jobs started together then read the node at the same time."""

    def __init__(self, upstream: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                time.sleep(NODE_LATENCY_S)
                request = urllib.request.Request(
                    upstream, body, {"content-type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                    data = answer.read()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def maintenance_elsewhere() -> Iterator[None]:
    """The session worker stops taking maintenance tasks while the test's gevent worker runs."""
    with session_worker_without("maintenance"):
        yield


def start_jobs(ranges: list[tuple[int, int]], env: dict[str, str]) -> list[int]:
    """`ethhook replay --detach` for each range, the commands run at once; the jobs' ids."""
    full_env = {**os.environ, **env}
    procs = [
        subprocess.Popen(
            [str(BIN / "ethhook"), "replay", "--chain", "1", "--from-block", str(start)]
            + ["--to-block", str(end), "--detach"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
        )
        for start, end in ranges
    ]
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        ids.append(int(out.strip()))
    return ids


def test_replay_jobs_run_to_done_on_a_gevent_worker_of_every_queue(
    receiver, start_anvil, maintenance_elsewhere
):
    node = start_anvil(chain_id=1)
    token = Token(node)
    first_block = node.block_number() + 1
    events = build_chain(node, token, transactions=8, per_tx=3, gap=19)
    last_block = node.block_number()
    for path in ("/a", "/b"):
        _, receiver.secrets[path] = add_endpoint(
            receiver.url(path), contracts=[token.address], events=[TRANSFER]
        )
    slow = SlowNode(node.http_url)
    env = {"ETHEREUM_HTTP": slow.url, "ETHHOOK_REPLAY_CHUNK_BLOCKS": "20"}
    worker = Worker(
        f"replay-gevent-{os.getpid()}",
        env,
        beat=False,
        pool="gevent",
        concurrency=20,
        queues="match,deliver,maintenance",
    )
    try:
        # JOBS jobs over consecutive parts of the range, started together: their chunks overlap.
        size = (last_block - first_block + JOBS) // JOBS
        ranges = [
            (start, min(start + size - 1, last_block))
            for start in range(first_block, last_block + 1, size)
        ]
        jobs = start_jobs(ranges, env)
        wait_until(
            lambda: all(job_row(j).state in ("done", "failed") for j in jobs),
            120,
            0.2,
            "every replay job to end",
        )
        states = [(job_row(j).state, job_row(j).error) for j in jobs]
        assert states == [("done", None)] * len(jobs), states
        assert sum(job_row(j).events for j in jobs) == events

        for path in ("/a", "/b"):
            wait_until(lambda p=path: len(receiver.on(p)) >= events, 60, 0.2, f"{path} events")
        time.sleep(1.5)
        for path in ("/a", "/b"):
            seen = collections.Counter(r.webhook_id for r in receiver.on(path))
            assert len(seen) == events and set(seen.values()) == {1}, path
            assert all(r.verified for r in receiver.on(path)), path
        log = worker.log()
        assert "running event loop" not in log
        assert "raised unexpected" not in log
    finally:
        worker.stop()
        slow.stop()
        print(f"--- {worker.log_path.name} (replay lines) ---")
        print("\n".join(line for line in worker.log().splitlines() if "replay" in line)[-4000:])
