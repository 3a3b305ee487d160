"""The test process's services: its PostgreSQL database (created, migrated, emptied, dropped), its
private redis-server, and real Celery workers on them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import TYPE_CHECKING

from ethhook.demo.localredis import LocalRedis
from tests.support.env import BIN, PG_ADMIN_URL, REDIS_PORT, ROOT, TEST_DB, TEST_ENV, TMP
from tests.support.waiting import stop_process, wait_until

if TYPE_CHECKING:
    from sqlalchemy import Connection


def create_database() -> str:
    """A new PostgreSQL database, migrated with `ethhook db upgrade`; its URL."""
    from sqlalchemy import create_engine, text

    admin = create_engine(f"{PG_ADMIN_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{TEST_DB}"'))
    admin.dispose()
    subprocess.run(
        [str(BIN / "ethhook"), "db", "upgrade"],
        check=True,
        env=os.environ.copy(),
        capture_output=True,
    )
    return TEST_ENV["ETHHOOK_DATABASE_URL"]


def drop_database() -> None:
    from sqlalchemy import create_engine, text

    from ethhook.db import dispose_engine

    dispose_engine()
    admin = create_engine(f"{PG_ADMIN_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)'))
    admin.dispose()


# The tables a test may fill, each before those it refers to (TRUNCATE's CASCADE from endpoints
# emptied endpoint_topic_keys and delivery_rollups too).
TEST_TABLES = (
    "delivery_attempts", "deliveries", "events", "endpoint_filters", "endpoint_topic_keys",
    "delivery_rollups", "replay_jobs", "endpoints", "chain_cursors", "chain_blocks", "chain_tags",
    "api_keys", "console_sessions", "ops_messages", "ops_endpoints",
)  # fmt: skip
# Up to this many rows in every table, DELETE empties them (7 ms here); TRUNCATE makes new files
# for every partition (80–220 ms), whatever the rows, but does not grow with them.
DELETE_AT_MOST = 5000


def empty_tables() -> None:
    """Every table as the migration left it (ids start at 1 again), and nothing in Redis about
    endpoints."""
    from sqlalchemy.exc import OperationalError

    from ethhook.db import get_engine

    # A task the last test left running may hold a lock on one of these tables while it waits for
    # another: PostgreSQL then picks one side of the deadlock and aborts it. When that side is
    # ours, the task has gone on and a second try finds the tables free.
    for attempt in range(1, 6):
        try:
            with get_engine().begin() as conn:
                _empty(conn)
            break
        except OperationalError as exc:
            if attempt == 5 or getattr(exc.orig, "pgcode", None) != "40P01":
                raise
    forget_endpoint_state()


def _empty(conn: Connection) -> None:
    from sqlalchemy import text

    capped = (
        f"(SELECT count(*) FROM (SELECT FROM {t} LIMIT {DELETE_AT_MOST + 1}) s)"
        for t in TEST_TABLES
    )
    if conn.scalar(text(f"SELECT greatest({', '.join(capped)})")) > DELETE_AT_MOST:
        conn.execute(text(f"TRUNCATE {', '.join(TEST_TABLES)} RESTART IDENTITY CASCADE"))
    else:
        for table in TEST_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(
            text(
                "SELECT setval(d.objid::regclass, 1, false) FROM pg_depend d"
                " WHERE d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')"
                " AND d.refobjid = ANY(CAST(:tables AS regclass[]))"
                " AND (SELECT relkind FROM pg_class WHERE oid = d.objid) = 'S'"
            ),
            {"tables": list(TEST_TABLES)},
        )
    # The built-in application stays, as the migration made it.
    conn.execute(text("DELETE FROM applications WHERE name <> 'default'"))


def forget_endpoint_state() -> None:
    """Empty the Redis database of breakers, rate limits and idempotency keys: empty_tables
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


def start_redis() -> LocalRedis:
    """The private redis-server on REDIS_PORT (tests may FLUSHALL it)."""
    workdir = TMP / "redis"
    workdir.mkdir(exist_ok=True)
    return LocalRedis(workdir, port=REDIS_PORT)


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
        env = {**os.environ, "PYTHONFAULTHANDLER": "1", **(extra_env or {})}
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
        self.name, self._args, self._env = name, args, env
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.start()

    def start(self) -> None:
        """Start the process (again, after `stop`: its log goes on in the same file)."""
        if self._log.closed:
            self._log = open(self.log_path, "a")  # noqa: SIM115 (closed in stop)
        self._started_at = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            self._args, cwd=ROOT, env=self._env, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            # A bound, not a wait: a worker starts in 3-5 s alone, but at the suite's busiest
            # minutes (load average 20 and more on 2 cores) one took more than 60 s, logging
            # nothing meanwhile.
            wait_until(self._ready, 120, 0.2, f"worker {self.name} to start (log: {self.log_path})")
        except AssertionError as exc:
            # Python's fault handler (PYTHONFAULTHANDLER) writes every thread's stack to the log.
            self.proc.send_signal(signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
            self.stop()  # a worker that did not start in time is not left running after the suite
            log = self.log_path.read_text(errors="replace")
            # The stacks, innermost frame first: what each thread was doing when time ran out (the
            # last dump: a restarted worker's log goes on in the same file).
            dump = log.rfind("Fatal Python error")
            shown = log[dump : dump + 6000] if dump >= 0 else log[-3000:]
            raise AssertionError(f"{exc}; its log:\n{shown}") from None
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited: {self.log_path.read_text()[-3000:]}")
        return b"ready." in self.log_path.read_bytes()[self._started_at :]

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        stop_process(self.proc, 20)
        self._log.close()
