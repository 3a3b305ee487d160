"""Database round trips and CPU per deliver task: `deliver.service.deliver` run in-process.

Each task is one endpoint's 100 pending deliveries (100 Transfers matched in-process), sent to the
bench receiver. Per task it counts the statements (`before_cursor_execute`), the connection
checkouts (each one a pre-ping round trip on PostgreSQL) and the commits, and the CPU time of
this process (`time.process_time`, the sending threads included; the receiver is another process)
and of the calling thread alone (`time.thread_time`: the database work and the bodies, not the POSTs).
Usage: python -m bench.deliver_db_bench [--tasks 20] [--warmup 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bench.common as c

PER_TASK = 100


def backend_cpu_ns(pid: int) -> int:
    """A PostgreSQL backend's CPU time so far, in ns (/proc/<pid>/schedstat: exact, not ticks)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def backend_pid(dbapi_connection: Any) -> int:
    pid = getattr(dbapi_connection, "get_backend_pid", None)
    if pid is None:  # not psycopg2
        raise SystemExit("deliver_db_bench: needs PostgreSQL through psycopg2")
    return int(pid())


class Counts:
    """What the engine saw: statements by their first words, checkouts, commits; and the CPU the
    backend spent on each kind of statement (`backend_ns`), and on everything (`backends`)."""

    def __init__(self) -> None:
        self.statements = 0
        self.checkouts = 0
        self.commits = 0
        self.kinds: dict[str, int] = {}
        self.backend_ns: dict[str, int] = {}
        self._started: tuple[str, int, int] | None = None

    @staticmethod
    def kind(sql: str) -> str:
        return " ".join(sql.split()[:3])[:40]

    def statement(self, conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        self.statements += 1
        kind = self.kind(sql)
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        pid = backend_pid(conn.connection.dbapi_connection)
        self._started = (kind, pid, backend_cpu_ns(pid))

    def statement_done(self, *_: Any) -> None:
        if self._started is None:
            return
        kind, pid, before = self._started
        self._started = None
        self.backend_ns[kind] = self.backend_ns.get(kind, 0) + backend_cpu_ns(pid) - before

    def checkout(self, *_: Any) -> None:
        self.checkouts += 1

    def commit(self, *_: Any) -> None:
        self.commits += 1


@contextmanager
def counting(counts: Counts) -> Iterator[None]:
    from sqlalchemy import event

    from ethhook.db import get_engine

    engine = get_engine()
    hooks = [
        (engine, "before_cursor_execute", counts.statement),
        (engine, "after_cursor_execute", counts.statement_done),
        (engine.pool, "checkout", counts.checkout),
        (engine, "commit", counts.commit),
    ]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        yield
    finally:
        for target, name, fn in hooks:
            event.remove(target, name, fn)


def prepare(contract: str, task: int) -> tuple[list[int], str, Any]:
    """One task's 100 deliveries, stored and matched as the pipeline would; (ids, token, their
    time range, as the task's message carries it)."""
    from ethhook.db import session_scope
    from ethhook.db.models import utcnow
    from tests.support.db import store_and_match
    from tests.support.factories import transfer

    events = [
        transfer(contract=contract, block=1 + task, log_index=i, value=task * PER_TASK + i)
        for i in range(PER_TASK)
    ]
    with session_scope() as session:
        groups = store_and_match(session, events, utcnow())
    assert len(groups) == 1, groups
    return groups[0].delivery_ids, groups[0].token, groups[0].event_at_range


def all_backends_ns(since: dict[int, int] | None = None) -> Any:
    """This database's backends' CPU ns by pid; with `since`, the ns used after it."""
    from sqlalchemy import text

    from ethhook.db import session_scope

    with session_scope() as session:
        pids = session.scalars(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).all()
    now = {pid: backend_cpu_ns(pid) for pid in pids}
    if since is None:
        return now
    return sum(ns - since.get(pid, ns) for pid, ns in now.items())


def run(receiver: c.ReceiverProcess, tasks: int, warmup: int) -> dict[str, Any]:
    from ethhook.config import get_settings
    from ethhook.db import session_scope
    from ethhook.deliver.service import deliver
    from tests.support.endpoints import add_endpoint
    from tests.support.factories import TRANSFER, address

    contract = address(11)
    endpoint_id, secret = add_endpoint(receiver.url("/db"), contracts=[contract], events=[TRANSFER])
    receiver.configure({"/db": secret})
    settings = get_settings()
    per_task: list[dict[str, Any]] = []
    for n in range(warmup + tasks):
        ids, token, bounds = prepare(contract, n)
        counts = Counts()
        backends = all_backends_ns()
        with counting(counts):
            cpu, main = time.process_time(), time.thread_time()
            report = deliver(session_scope, settings, endpoint_id, ids, token, bounds)
            cpu, main = time.process_time() - cpu, time.thread_time() - main
        backends = all_backends_ns(backends)
        assert report.succeeded == PER_TASK, report
        if n >= warmup:
            per_task.append(
                {
                    "statements": counts.statements,
                    "checkouts": counts.checkouts,
                    "commits": counts.commits,
                    "cpu_ms_per_delivery": 1000 * cpu / PER_TASK,
                    "main_cpu_ms_per_delivery": 1000 * main / PER_TASK,
                    "postgres_ms_per_delivery": backends / 1e6 / PER_TASK,
                    "kinds": counts.kinds,
                    "postgres_ms_per_task_by_kind": {
                        k: ns / 1e6 for k, ns in counts.backend_ns.items()
                    },
                }
            )
    return {
        "tasks": tasks,
        "statements": c.median([t["statements"] for t in per_task]),
        "checkouts": c.median([t["checkouts"] for t in per_task]),
        "commits": c.median([t["commits"] for t in per_task]),
        "round_trips": c.median(
            [t["statements"] + t["checkouts"] + t["commits"] for t in per_task]
        ),
        "cpu_ms_per_delivery": c.median([t["cpu_ms_per_delivery"] for t in per_task]),
        "main_cpu_ms_per_delivery": c.median([t["main_cpu_ms_per_delivery"] for t in per_task]),
        # Every backend of the database, the statements' own share by kind below (the rest:
        # BEGIN, COMMIT, pre-pings).
        "postgres_ms_per_delivery": c.median([t["postgres_ms_per_delivery"] for t in per_task]),
        "kinds": per_task[-1]["kinds"],
        "postgres_ms_per_task_by_kind": {
            k: c.median([t["postgres_ms_per_task_by_kind"].get(k, 0.0) for t in per_task])
            for k in per_task[-1]["kinds"]
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args()
    c.on_sigterm_exit()
    with c.services():
        receiver = c.ReceiverProcess()
        try:
            result = run(receiver, args.tasks, args.warmup)
        finally:
            receiver.stop()
    import ethhook

    result["code"] = ethhook.__file__
    print(json.dumps(result, indent=2))
    if args.json:
        c.write_json(__import__("pathlib").Path(args.json), result)


if __name__ == "__main__":
    main()
