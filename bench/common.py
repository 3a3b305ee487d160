"""Shared bench plumbing: a private PostgreSQL database and redis-server, receiver, RSS sampling.

Import this module before anything imports ethhook's settings: it points every ETHHOOK_* variable
at the bench's own database and Redis. It reuses the test suite's process helpers (Worker, Anvil,
Token, ListenerProcess) so benchmarks start processes exactly as the tests do.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import tests.support.env as test_env  # (sets the test environment; overridden below)
from bench.machine import machine  # noqa: F401  (re-exported)
from ethhook.demo.localredis import LocalRedis
from tests.support.services import Worker
from tests.support.waiting import free_port, stop_process, wait_until

ROOT = test_env.ROOT
BIN = test_env.BIN
TMP = test_env.TMP
# Greenlets per deliver worker, as workers/README.md recommends for production.
DELIVER_CONCURRENCY = 100

PG_ADMIN_URL = os.environ.get("ETHHOOK_BENCH_PG", test_env.PG_ADMIN_URL)
BENCH_DB = f"ethhook_bench_{uuid.uuid4().hex[:8]}"
REDIS_PORT = free_port()

# Production defaults for everything but where the services are and private targets (loopback).
for _var in list(test_env.TEST_ENV):
    os.environ.pop(_var, None)
BENCH_ENV = {
    "ETHHOOK_DATABASE_URL": f"{PG_ADMIN_URL}/{BENCH_DB}",
    "ETHHOOK_BROKER_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
    "ETHHOOK_REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/1",
    "ETHHOOK_ALLOW_PRIVATE_TARGETS": "true",
    # Several workers on one box: no metrics HTTP server each (the metrics are still recorded).
    "ETHHOOK_WORKER_METRICS_PORT": "0",
}
os.environ.update(BENCH_ENV)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def delay_spread(lat_ms: list[float]) -> dict[str, float]:
    """P50, P95, P99 and the most of a run's delays (ms)."""
    return {
        "p50_ms": percentile(lat_ms, 50),
        "p95_ms": percentile(lat_ms, 95),
        "p99_ms": percentile(lat_ms, 99),
        "max_ms": max(lat_ms) if lat_ms else float("nan"),
    }


# --- services -----------------------------------------------------------------------------------


class Services:
    """A fresh migrated PostgreSQL database and a private redis-server; `close()` removes both."""

    def __init__(self) -> None:
        from sqlalchemy import create_engine, text

        self.redis: LocalRedis | None = None
        self.admin = create_engine(f"{PG_ADMIN_URL}/postgres", isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        subprocess.run(
            [str(BIN / "ethhook"), "db", "upgrade"],
            check=True,
            env=os.environ.copy(),
            capture_output=True,
        )
        workdir = TMP / "redis"
        workdir.mkdir(exist_ok=True)
        self.redis = LocalRedis(workdir, port=REDIS_PORT)
        log(
            f"services: database {BENCH_DB}, redis-server :{REDIS_PORT} (pid {self.redis.proc.pid})"
        )

    def flush_redis(self) -> None:
        import redis

        client = redis.Redis(port=REDIS_PORT)
        client.flushall()
        client.close()

    def truncate(self) -> None:
        from sqlalchemy import text

        from ethhook.db import get_engine

        with get_engine().begin() as conn:
            conn.execute(
                text(
                    "TRUNCATE delivery_attempts, deliveries, events, endpoint_filters, endpoints, "
                    "chain_cursors, chain_blocks RESTART IDENTITY CASCADE"
                )
            )

    def close(self) -> None:
        from sqlalchemy import text

        from ethhook.db import dispose_engine

        if self.redis is not None:
            self.redis.stop()
        dispose_engine()
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
        self.admin.dispose()
        shutil.rmtree(TMP, ignore_errors=True)


@contextlib.contextmanager
def services() -> Iterator[Services]:
    s = Services()
    try:
        yield s
    finally:
        s.close()


def start_worker(name: str, queues: str, pool: str, concurrency: int) -> Worker:
    """A Celery worker exactly as the README runs it (task events on via celeryconfig)."""
    return Worker(name, beat=False, pool=pool, concurrency=concurrency, queues=queues)


# --- the receiver -------------------------------------------------------------------------------


class ReceiverProcess:
    """bench/receiver.py in its own process: a fast aiohttp server that verifies signatures."""

    def __init__(self) -> None:
        self.port = free_port()
        self.log_path = TMP / f"receiver-{self.port}.log"
        out = open(self.log_path, "wb")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver", str(self.port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        import requests

        self.http = requests.Session()
        wait_until(self._up, 15, 0.05, what="bench receiver")

    def _up(self) -> bool:
        import requests

        if self.proc.poll() is not None:
            raise RuntimeError(self.log_path.read_text())
        try:
            return self.http.get(self.url("/_stats"), timeout=1).ok
        except requests.ConnectionError:
            return False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def configure(self, secrets: dict[str, str]) -> None:
        self.http.post(self.url("/_secrets"), json=secrets, timeout=10).raise_for_status()

    def reset(self) -> None:
        self.http.post(self.url("/_reset"), timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.get(self.url("/_stats"), timeout=10).json()
        return answer

    def arrivals(self) -> list[list[Any]]:
        """[arrival time, transaction hash] per webhook received since the last reset."""
        answer: list[list[Any]] = self.http.get(self.url("/_arrivals"), timeout=30).json()
        return answer

    def stop(self) -> None:
        stop_process(self.proc)


# --- memory ---------------------------------------------------------------------------------------


class RssSampler:
    """Samples the RSS of named processes (and each of their children) every `interval_s`."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.pids: dict[str, int] = {}
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, name: str, pid: int) -> None:
        self.pids[name] = pid

    def sample_once(self) -> dict[str, float]:
        import psutil

        now: dict[str, float] = {}
        for name, pid in list(self.pids.items()):
            try:
                proc = psutil.Process(pid)
                now[name] = proc.memory_info().rss / 2**20
                for i, child in enumerate(proc.children(recursive=True)):
                    now[f"{name}/child{i}"] = child.memory_info().rss / 2**20
            except psutil.Error:
                continue
        for key, mb in now.items():
            self.peak[key] = max(self.peak.get(key, 0.0), mb)
        return now

    def reset(self) -> None:
        self.peak = {}

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_once()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def on_sigterm_exit() -> None:
    """Turn SIGTERM into SystemExit so `finally` blocks stop every child process."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
