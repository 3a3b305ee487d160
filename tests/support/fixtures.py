"""The fixtures every tier shares (a pytest plugin, registered by tests/conftest.py): the database
and private Redis, a Celery worker, receivers, anvil nodes, listeners, replay workers, the API."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import services
from tests.support.env import TMP
from tests.support.receiver import Receiver
from tests.support.services import Worker

if TYPE_CHECKING:  # imported by the fixtures that use them: web3 and the API cost ~0.3 s to import
    from tests.support.api import ApiServer
    from tests.support.chain import Anvil
    from tests.support.listener import ListenerProcess

# --- services -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """A new PostgreSQL database, migrated with `ethhook db upgrade`, dropped at the end."""
    url = services.create_database()
    yield url
    services.drop_database()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A private redis-server on a free loopback port (tests may FLUSHALL it)."""
    server = services.start_redis()
    yield server.url
    server.stop()


@pytest.fixture()
def db(database: str) -> Iterator[None]:
    """Empty tables before each test that uses the database."""
    services.empty_tables()
    yield


# The session's worker once a test asked for it: it runs until the session ends.
_session_workers: list[Worker] = []


@pytest.fixture(scope="session")
def worker(database: str, redis_server: str) -> Iterator[Worker]:
    w = Worker("main")
    _session_workers.append(w)
    yield w
    _session_workers.remove(w)
    w.stop()


@pytest.fixture(scope="module")
def without_session_worker() -> Iterator[None]:
    """The session's worker, when an earlier module in this process started it, stopped for the
    module and started again after it: tests that run workers of its own on the session's database
    and broker (`ethhook up`) need them to be the only ones taking their tasks and due deliveries
    (the session worker's beat would send a retry, and its log would have the line), and tests
    that run beat's jobs by hand need no beat to run them first."""
    stopped = [w for w in _session_workers if w.proc.poll() is None]
    for w in stopped:
        w.stop()
    yield
    for w in stopped:
        w.start()


@contextmanager
def session_worker_without(queue: str) -> Iterator[None]:
    """The session's worker, when it runs, stops taking `queue`'s tasks until the block ends (a
    test's own worker takes them meanwhile). Each change waits for the worker's reply: one that
    has not answered still consumes, and a test's task would go to it."""
    from ethhook.celery_app import app

    host = "main@" + os.uname().nodename
    running = any(w.proc.poll() is None for w in _session_workers)
    if running:
        _confirmed(app.control.cancel_consumer, queue, host)
    try:
        yield
    finally:
        if running:
            _confirmed(app.control.add_consumer, queue, host)


def _confirmed(command: Any, queue: str, host: str) -> None:
    # A bound, not a wait: the reply takes milliseconds alone, seconds at the suite's peak.
    replies = command(queue, destination=[host], reply=True, timeout=60)
    assert replies, f"{host} did not answer {command.__name__}({queue!r}) within 60 s"


@pytest.fixture()
def start_replay_worker() -> Iterator[Any]:
    """Maintenance workers that know the test's chain URLs (a replay reads the node where it
    runs); the session worker stops taking maintenance tasks meanwhile."""
    workers: list[Worker] = []

    def start(env: dict[str, str]) -> Worker:
        name = f"replay-{len(workers) + 1}-{os.getpid()}"
        worker = Worker(name, env, beat=False, concurrency=2, queues="maintenance")
        workers.append(worker)
        return worker

    with session_worker_without("maintenance"):
        yield start
        for worker in workers:
            if worker.proc.poll() is None:
                worker.stop()
            print(f"--- {worker.log_path.name} (replay lines) ---")
            print(
                "\n".join(line for line in worker.log().splitlines() if "replay." in line)[-4000:]
            )


# --- receivers ----------------------------------------------------------------------------------


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


# --- chains and listeners -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def anvil_bin() -> Path:
    from ethhook.demo.devchain import anvil_binary

    return anvil_binary()


@pytest.fixture()
def start_anvil(anvil_bin: Path) -> Iterator[Any]:
    """Start anvil nodes: `start_anvil(chain_id=1, extra=[...])`; all stopped at teardown."""
    from tests.support.chain import Anvil

    nodes: list[Anvil] = []

    def start(chain_id: int = 1, name: str = "anvil", extra: list[str] | None = None) -> Anvil:
        node = Anvil(anvil_bin, chain_id, name, extra)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()


@pytest.fixture()
def start_listener() -> Iterator[Any]:
    """Start `ethhook listen` processes; all stopped at teardown."""
    from tests.support.listener import ListenerProcess

    procs: list[ListenerProcess] = []

    def start(chains: dict[str, str], **kw: Any) -> ListenerProcess:
        proc = ListenerProcess(chains, **kw)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()
        # Shown by pytest only when the test failed.
        print(f"--- {proc.log_path.name} (last 60 lines) ---")
        print("\n".join(proc.log().splitlines()[-60:]))


# --- the HTTP API -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def api(database: str, redis_server: str) -> Iterator[ApiServer]:
    """The API with its rate limits off (other tests send many requests with one key, and
    many without a valid one)."""
    from tests.support.api import ApiServer

    server = ApiServer({"ETHHOOK_API_RATE_LIMIT": "0", "ETHHOOK_API_AUTH_FAILURE_RATE": "0"})
    yield server
    server.stop()


@pytest.fixture()
def operator_key(db: None) -> str:
    from ethhook.db import session_scope
    from ethhook.service import apps

    with session_scope() as session:
        return apps.set_operator_key(session)


def pytest_unconfigure(config: pytest.Config) -> None:
    """The process's TMP goes, in every process (xdist's controller makes one and runs no
    fixture)."""
    shutil.rmtree(TMP, ignore_errors=True)
