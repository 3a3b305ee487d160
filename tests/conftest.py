"""Shared fixtures: a fresh PostgreSQL database, a private redis-server, a real Celery worker with
beat, and loopback HTTP receivers that verify Standard Webhooks signatures.

The test process and every process it starts read the same ETHHOOK_* variables, set here before
anything imports ethhook's settings.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ethhook.config import CHAIN_URL_VARIABLES

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PG_ADMIN_URL = os.environ.get("ETHHOOK_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")
TEST_DB = f"ethhook_test_{uuid.uuid4().hex[:8]}"
REDIS_PORT = free_port()
TMP = Path(tempfile.mkdtemp(prefix="ethhook-tests-"))

TEST_ENV = {
    "ETHHOOK_DATABASE_URL": f"{PG_ADMIN_URL}/{TEST_DB}",
    "ETHHOOK_BROKER_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
    "ETHHOOK_REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/1",
    "ETHHOOK_ALLOW_PRIVATE_TARGETS": "true",
    "ETHHOOK_DUE_SCAN_INTERVAL_S": "0.5",
    "ETHHOOK_DISPATCH_LEASE_S": "4",
    "ETHHOOK_DELIVERY_LEASE_S": "30",
    "ETHHOOK_REPLAY_LEASE_S": "5",
    "ETHHOOK_DELIVERY_CONNECT_TIMEOUT_S": "2",
    "ETHHOOK_DELIVERY_READ_TIMEOUT_S": "3",
    "ETHHOOK_BREAKER_FAIL_MAX": "5",
    "ETHHOOK_BREAKER_RESET_TIMEOUT_S": "3",
    "ETHHOOK_WORKER_METRICS_PORT": "0",  # many workers share this machine; a test sets its own
}
os.environ.update(TEST_ENV)
for _var in (*CHAIN_URL_VARIABLES, "ETHHOOK_CHAINS_FILE"):
    os.environ.pop(_var, None)


def wait_until(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll until predicate() is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --- services -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """A new PostgreSQL database, migrated with `ethhook db upgrade`, dropped at the end."""
    from sqlalchemy import create_engine, text

    admin = create_engine(f"{PG_ADMIN_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{TEST_DB}"'))
    subprocess.run(
        [str(BIN / "ethhook"), "db", "upgrade"],
        check=True,
        env=os.environ.copy(),
        capture_output=True,
    )
    yield TEST_ENV["ETHHOOK_DATABASE_URL"]
    from ethhook.db import dispose_engine

    dispose_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A private redis-server on a free loopback port (tests may FLUSHALL it)."""
    from ethhook.demo.localredis import LocalRedis

    workdir = TMP / "redis"
    workdir.mkdir(exist_ok=True)
    server = LocalRedis(workdir, port=REDIS_PORT)
    yield server.url
    server.stop()


@pytest.fixture()
def db(database: str) -> Iterator[None]:
    """Empty tables before each test that uses the database."""
    from sqlalchemy import text

    from ethhook.db import get_engine

    with get_engine().begin() as conn:
        conn.execute(
            text(
                "TRUNCATE delivery_attempts, deliveries, events, endpoint_filters, endpoints, "
                "chain_cursors, chain_blocks, api_keys, replay_jobs, console_sessions "
                "RESTART IDENTITY CASCADE"
            )
        )
        # The built-in application stays, as the migration made it.
        conn.execute(text("DELETE FROM applications WHERE name <> 'default'"))
    _forget_endpoint_state()
    yield


def _forget_endpoint_state() -> None:
    """Empty the Redis database of breakers, rate limits and idempotency keys: RESTART IDENTITY
    hands the same endpoint ids out again, and a breaker an earlier test opened for endpoint 1
    would be the next endpoint 1's."""
    import redis

    client = redis.Redis.from_url(TEST_ENV["ETHHOOK_REDIS_URL"], socket_connect_timeout=1)
    try:
        client.flushdb()
    except redis.ConnectionError:
        pass  # the private redis-server has not started yet: it holds nothing to forget
    finally:
        client.close()


class Worker:
    """A real Celery worker process (all queues) with embedded beat."""

    def __init__(
        self,
        name: str,
        extra_env: dict[str, str] | None = None,
        beat: bool = True,
        pool: str = "threads",
        concurrency: int = 8,
        queues: str = "match,deliver,maintenance",
    ):
        self.log_path = TMP / f"worker-{name}.log"
        env = os.environ.copy()
        env.update(extra_env or {})
        args = [
            str(BIN / "ethhook-worker"),  # = celery -A ethhook.celery_app worker, as in production
            "-Q",
            queues,
            "-P",
            pool,
            "-c",
            str(concurrency),
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "INFO",
        ]
        if beat:
            args += ["-B", "-s", str(TMP / f"beat-{name}")]
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        wait_until(self._ready, 60, 0.2, what=f"worker {name} to start (log: {self.log_path})")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited: {self.log_path.read_text()[-3000:]}")
        return "ready." in self.log_path.read_text()

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        stop_process(self.proc, 20)
        self._log.close()


@pytest.fixture(scope="session")
def worker(database: str, redis_server: str) -> Iterator[Worker]:
    w = Worker("main")
    yield w
    w.stop()


# --- receivers ----------------------------------------------------------------------------------

from tests.receiver import Receiver  # noqa: E402


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(scope="session", autouse=True)
def _cleanup_tmp() -> Iterator[None]:
    yield
    shutil.rmtree(TMP, ignore_errors=True)
