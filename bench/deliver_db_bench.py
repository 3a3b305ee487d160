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


class Counts:
    """What the engine saw: statements by their first words, checkouts, commits."""

    def __init__(self) -> None:
        self.statements = 0
        self.checkouts = 0
        self.commits = 0
        self.kinds: dict[str, int] = {}

    def statement(self, _conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        self.statements += 1
        kind = " ".join(sql.split()[:3])[:40]
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

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


def prepare(contract: str, task: int) -> tuple[list[int], str]:
    """One task's 100 deliveries, stored and matched as the pipeline would; (ids, token)."""
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
    return groups[0].delivery_ids, groups[0].token


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
        ids, token = prepare(contract, n)
        counts = Counts()
        with counting(counts):
            cpu, main = time.process_time(), time.thread_time()
            report = deliver(session_scope, settings, endpoint_id, ids, token)
            cpu, main = time.process_time() - cpu, time.thread_time() - main
        assert report.succeeded == PER_TASK, report
        if n >= warmup:
            per_task.append(
                {
                    "statements": counts.statements,
                    "checkouts": counts.checkouts,
                    "commits": counts.commits,
                    "cpu_ms_per_delivery": 1000 * cpu / PER_TASK,
                    "main_cpu_ms_per_delivery": 1000 * main / PER_TASK,
                    "kinds": counts.kinds,
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
        "kinds": per_task[-1]["kinds"],
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
