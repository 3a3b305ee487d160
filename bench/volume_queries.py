"""The product's own queries on a database with history, timed and EXPLAINed: beat's per-second due
scan, a deliver task's claim, delivery statistics and the delivery list (API and CLI).

Each query is the product's function, called as its caller calls it, on a state made for it in a
transaction that is rolled back: the newest 100 deliveries (the last burst's, one endpoint) made
pending and due (for the due scan) or leased to a message (for the claim). The statements it sends
are captured; each is then run again under EXPLAIN (ANALYZE, FORMAT JSON) on the same state, and
its plan says which partitions of the history tables it read: planned (after plan-time pruning)
and executed (the rest were pruned at run time or never started).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import Session

from ethhook.db.partition_plan import is_partition_name, table_of

REPEATS = 5
NEWEST = 100


@dataclass(frozen=True)
class State:
    """What the queries act on: the newest deliveries (one endpoint's), a history endpoint."""

    now: datetime
    endpoint_id: int
    ids: list[int]
    bounds: tuple[datetime, datetime]
    listed_endpoint: int
    token: str = "m-volumebench"


def newest_state(conn: Connection, listed_endpoint: int, now: datetime) -> State:
    rows = conn.execute(
        text(
            "SELECT endpoint_id, id, event_at FROM deliveries WHERE endpoint_id ="
            " (SELECT endpoint_id FROM deliveries ORDER BY id DESC LIMIT 1)"
            " ORDER BY id DESC LIMIT :n"
        ),
        {"n": NEWEST},
    ).all()
    if not rows:
        raise SystemExit("no deliveries to measure the claim with: run the bursts first")
    times = [r.event_at for r in rows]
    return State(now, rows[0].endpoint_id, sorted(r.id for r in rows), (min(times), max(times)),
                 listed_endpoint)  # fmt: skip


def make_due(conn: Connection, s: State) -> None:
    conn.execute(
        text(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = :due,"
            " lease_token = NULL, lease_expires_at = NULL"
            " WHERE id = ANY(:ids) AND event_at BETWEEN :a AND :b"
        ),
        {"ids": s.ids, "a": s.bounds[0], "b": s.bounds[1], "due": s.now - timedelta(seconds=1)},
    )


def make_leased(conn: Connection, s: State) -> None:
    make_due(conn, s)
    conn.execute(
        text(
            "UPDATE deliveries SET lease_token = :token, lease_expires_at = :until"
            " WHERE id = ANY(:ids) AND event_at BETWEEN :a AND :b"
        ),
        {"ids": s.ids, "a": s.bounds[0], "b": s.bounds[1], "token": s.token,
         "until": s.now + timedelta(seconds=30)},
    )  # fmt: skip


def due_scan(session: Session, s: State) -> Any:
    """Beat's dispatch_due, each second: unmatched events, confirmed releases, due deliveries."""
    from ethhook.config import get_settings
    from ethhook.maintenance import jobs

    limit = get_settings().due_scan_limit
    jobs.dispatch_unmatched(session, s.now, limit)
    jobs.release_confirmed(session, s.now)
    return jobs.dispatch_due(session, s.now, limit, False)


def claim(session: Session, s: State) -> Any:
    """A deliver task's first statement: claim its message's deliveries and load their events."""
    from ethhook.config import get_settings
    from ethhook.deliver.service import LOAD_CHUNK
    from ethhook.deliver.store.claimload import claim_and_load
    from ethhook.workqueue.lease import new_claim_token

    return claim_and_load(session, s.endpoint_id, s.ids, s.token, new_claim_token(), s.now,
                          get_settings(), LOAD_CHUNK, s.bounds)  # fmt: skip


def stats_24h(session: Session, s: State) -> Any:
    """`ethhook stats` / GET /v1/stats: every endpoint's last 24 hours."""
    from ethhook.service.stats import delivery_stats

    return delivery_stats(session, s.now - timedelta(hours=24), s.now)


def lister(**where: Any) -> Callable[[Session, State], Any]:
    def run(session: Session, s: State) -> Any:
        """`ethhook delivery list` / GET /v1/deliveries: the first page."""
        from ethhook.service.deliveries import DeliveryFilter, list_deliveries

        found = {k: (s.listed_endpoint if v == "listed" else v) for k, v in where.items()}
        return list_deliveries(session, DeliveryFilter(**found), scope=None)

    return run


def show(session: Session, s: State) -> Any:
    """`ethhook delivery show ID` / GET /v1/deliveries/ID: a delivery by id, with its attempts."""
    from ethhook.service.deliveries import show_delivery

    return show_delivery(session, s.ids[-1], scope=None)


Setup = Callable[[Connection, State], None]
QUERIES: dict[str, tuple[Setup | None, Callable[[Session, State], Any]]] = {
    "due scan (beat, every second; 100 due)": (make_due, due_scan),
    "claim (deliver task, 100 ids)": (make_leased, claim),
    "stats, 24 h": (None, stats_24h),
    "delivery list": (None, lister()),
    "delivery list --status failed": (None, lister(status="failed")),
    "delivery list --endpoint (a history endpoint)": (None, lister(endpoint_id="listed")),
    "delivery show": (None, show),
}


@contextmanager
def _rolled_back(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            yield conn
        finally:
            trans.rollback()


@contextmanager
def _captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    found: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        found.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def partitions_in(plan: dict[str, Any]) -> tuple[set[str], set[str], int]:
    """(partitions in the plan, those executed, subplans removed at run time) of a JSON plan."""
    planned: set[str] = set()
    executed: set[str] = set()
    removed = 0

    def walk(node: dict[str, Any]) -> None:
        nonlocal removed
        name = node.get("Relation Name")
        if name and is_partition_name(name):
            planned.add(name)
            if node.get("Actual Loops", 1) > 0:
                executed.add(name)
        removed += int(node.get("Subplans Removed", 0))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return planned, executed, removed


def by_table(partitions: set[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in partitions:
        table = table_of(name)
        if table is not None:
            counts[table] = counts.get(table, 0) + 1
    return counts


def measure(engine: Engine, name: str, s: State) -> dict[str, Any]:
    """Median ms of REPEATS calls, and each statement's plan: partitions and execution ms."""
    setup, run = QUERIES[name]
    times = []
    statements: list[tuple[str, Any]] = []
    for i in range(REPEATS + 1):
        with _rolled_back(engine) as conn:
            if setup is not None:
                setup(conn, s)
            with _captured(engine) as found:
                began = time.perf_counter()
                run(Session(bind=conn), s)
                spent = time.perf_counter() - began
            if i == 0:
                statements = list(found)  # the first call warms the caches: not timed
            else:
                times.append(spent * 1000)
    plans = []
    for k, (statement, params) in enumerate(statements):
        with _rolled_back(engine) as conn:
            if setup is not None:
                setup(conn, s)
            raw = conn.connection.dbapi_connection
            assert raw is not None
            cursor = raw.cursor()
            for earlier, earlier_params in statements[:k]:
                cursor.execute(earlier, earlier_params)
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)
            (plan,) = cursor.fetchone()[0]
        planned, executed, removed = partitions_in(plan)
        plans.append(
            {
                "statement": " ".join(statement.split())[:160],
                "partitions_planned": len(planned),
                "partitions_executed": len(executed),
                "planned_by_table": by_table(planned),
                "executed_by_table": by_table(executed),
                "subplans_removed": removed,
                "execution_ms": plan["Execution Time"],
                "planning_ms": plan["Planning Time"],
            }
        )
    return {"median_ms": statistics.median(times), "runs_ms": times, "statements": plans}


def measure_all(engine: Engine, listed_endpoint: int, now: datetime) -> dict[str, Any]:
    with engine.connect() as conn:
        s = newest_state(conn, listed_endpoint, now)
    return {name: measure(engine, name, s) for name in QUERIES}


def disk(engine: Engine) -> dict[str, int]:
    """Bytes: the database, and each history table (all its partitions, with their indexes); its
    partitions, and its rows as the last ANALYZE counted them."""
    with engine.connect() as conn:
        sizes = {"database": int(conn.scalar(text("SELECT pg_database_size(current_database())")))}
        for table in ("events", "deliveries", "delivery_attempts"):
            total, indexes, count, rows = conn.execute(
                text(
                    "SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0),"
                    " coalesce(sum(pg_indexes_size(t.relid)), 0),"
                    " count(*) FILTER (WHERE t.isleaf),"
                    " coalesce(sum(greatest(c.reltuples, 0)) FILTER (WHERE t.isleaf), 0)"
                    " FROM pg_partition_tree(CAST(:t AS regclass)) t"
                    " JOIN pg_class c ON c.oid = t.relid"
                ),
                {"t": table},
            ).one()
            sizes[table] = int(total)
            sizes[f"{table}_indexes"] = int(indexes)
            sizes[f"{table}_partitions"] = int(count)
            sizes[f"{table}_rows_estimate"] = int(rows)
    return sizes


ACTIVITY = (
    "seq_scan",
    "seq_tup_read",
    "idx_scan",
    "idx_tup_fetch",
    "n_tup_ins",
    "n_tup_upd",
    "n_tup_hot_upd",
)


def table_activity(engine: Engine) -> dict[str, dict[str, int]]:
    """pg_stat_user_tables' counters of every history partition (what a burst's statements read
    and wrote, as the difference of two of these)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT relname, {', '.join(ACTIVITY)} FROM pg_stat_user_tables")
        ).all()
    return {r[0]: dict(zip(ACTIVITY, map(int, r[1:]), strict=True)) for r in rows
            if is_partition_name(r[0])}  # fmt: skip


def activity_delta(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """The counters that moved, per partition."""
    delta = {}
    for name, counts in after.items():
        was = before.get(name, dict.fromkeys(ACTIVITY, 0))
        moved = {k: v - was[k] for k, v in counts.items() if v != was[k]}
        if moved:
            delta[name] = moved
    return delta
