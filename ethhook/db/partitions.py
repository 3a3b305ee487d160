"""The history tables' partitions in PostgreSQL: which exist (pg_catalog), making the ones a write
needs before it needs them, and the DDL retention uses to take them away.

Every writer of history rows calls `writing` (or `ensure_partitions`) with its rows' event
times. A process remembers which ranges exist; a time outside them (a replay of old blocks, a
chain whose clock is off, the first rows of a new interval beat did not make yet) makes the
partitions it needs, for the three tables at once, on a connection of its own: the caller's
transaction neither holds the DDL's locks nor rolls the partitions back. A new partition is a
plain table attached to its parent, which locks the parent in SHARE UPDATE EXCLUSIVE mode only
(CREATE TABLE … PARTITION OF would lock out every reader and writer of the parent meanwhile).
There is no DEFAULT partition: it would have to be scanned by every new partition, and blocks
DETACH … CONCURRENTLY. SQLite (the demo) has plain tables: every function here does nothing there.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ethhook.config import get_settings
from ethhook.db.base import utcnow
from ethhook.db.dialect import is_postgres
from ethhook.db.partition_plan import (
    HISTORY_TABLES,
    Span,
    parse_bound,
    partition_name,
    retention_cutoff,
    span_to_create,
    sql_bounds,
    times_ahead,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Bind = Session | Connection | Engine

# deliveries partitions leave room in each page, so that a status update that changes no indexed
# column (a claim, a lease) is a HOT update: no new index entries. Room for two more versions of
# each row: its sequence number and its claim, even while a long transaction elsewhere keeps the
# page from being pruned (at 50, the claim then found no room).
FILLFACTOR = {"deliveries": 35}
# How long partition DDL waits for a lock before giving up (the caller retries later).
LOCK_TIMEOUT = "10s"
# PostgreSQL's check_violation, raised with "no partition of relation … found for row".
_CHECK_VIOLATION = "23514"


@dataclass(frozen=True)
class Partition:
    """One partition of a history table, as pg_catalog describes it."""

    table: str
    name: str
    span: Span
    detaching: bool  # DETACH … CONCURRENTLY started and not finished
    rows_estimate: int  # pg_class.reltuples (-1: never analysed)
    bytes: int


_LIST = text(
    "SELECT parent.relname AS parent, child.relname AS name,"
    " pg_get_expr(child.relpartbound, child.oid) AS bound, i.inhdetachpending AS detaching,"
    " child.reltuples AS rows_estimate, pg_total_relation_size(child.oid) AS bytes"
    " FROM pg_inherits i JOIN pg_class parent ON parent.oid = i.inhparent"
    " JOIN pg_class child ON child.oid = i.inhrelid"
    " WHERE parent.relnamespace = to_regnamespace(current_schema())"
    " AND parent.relname IN ('events', 'deliveries', 'delivery_attempts')"
    " ORDER BY parent.relname, child.relname"
)


def read_partitions(conn: Connection) -> list[Partition]:
    """Every partition of the history tables; `conn` must be in a transaction (the bounds are
    rendered in UTC for it)."""
    conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
    conn.execute(text("SET LOCAL DateStyle = 'ISO'"))
    found = []
    for row in conn.execute(_LIST):
        span = parse_bound(row.bound)
        if span is not None:
            found.append(
                Partition(
                    row.parent, row.name, span, row.detaching, int(row.rows_estimate), row.bytes
                )
            )
    return found


def list_partitions(engine: Engine) -> list[Partition]:
    with engine.connect() as conn, conn.begin():
        return read_partitions(conn)


class _Known:
    """The spans this process knows to exist, per database and table, sorted by start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: dict[str, dict[str, list[Span]]] = {}

    def covered(self, key: str, times: Iterable[datetime]) -> list[datetime]:
        """The times some table has no known partition for."""
        with self._lock:
            tables = self._spans.get(key)
            if tables is None:
                return sorted(set(times))
            return sorted(
                t
                for t in set(times)
                if not all(_covers(tables.get(n, []), t) for n in HISTORY_TABLES)
            )

    def store(self, key: str, partitions: Sequence[Partition]) -> None:
        tables: dict[str, list[Span]] = {name: [] for name in HISTORY_TABLES}
        for p in partitions:
            if not p.detaching:
                tables[p.table].append(p.span)
        for spans in tables.values():
            spans.sort(key=_start_key)
        with self._lock:
            self._spans[key] = tables

    def forget(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._spans.clear()
            else:
                self._spans.pop(key, None)


_known = _Known()
_MIN = datetime.min.replace(tzinfo=None)


def _start_key(span: Span) -> tuple[int, datetime]:
    return (0, _MIN) if span.start is None else (1, span.start.replace(tzinfo=None))


def _covers(spans: Sequence[Span], t: datetime) -> bool:
    """Whether one of the sorted, non-overlapping `spans` covers `t`."""
    i = bisect.bisect_right(spans, (1, t.replace(tzinfo=None)), key=_start_key) - 1
    return i >= 0 and spans[i].covers(t)


def engine_of(bind: Bind) -> Engine:
    if isinstance(bind, Session):
        bind = bind.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def ensure_partitions(bind: Bind, times: Iterable[datetime], interval_s: int | None = None) -> None:
    """Make sure every history table has a partition for each of `times`."""
    if not is_postgres(bind):
        return
    engine = engine_of(bind)
    key = str(engine.url)
    missing = _known.covered(key, times)
    if not missing:
        return
    _known.store(key, list_partitions(engine))
    missing = _known.covered(key, missing)
    if missing:
        interval_s = interval_s or get_settings().partition_interval_s
        _known.store(key, create_partitions(engine, missing, interval_s))


def create_partitions(
    engine: Engine, times: Sequence[datetime], interval_s: int
) -> list[Partition]:
    """make_partitions in a transaction of its own; returns every partition as it then is."""
    with engine.connect() as conn, conn.begin():
        made = make_partitions(conn, times, interval_s)
        partitions = read_partitions(conn)
    if made:
        log.info("db.partitions.created %s", " ".join(made))
    return partitions


def make_partitions(conn: Connection, times: Iterable[datetime], interval_s: int) -> list[str]:
    """Partitions of every history table covering `times`, in `conn`'s transaction, which then
    holds the three parents' SHARE UPDATE EXCLUSIVE locks (so two processes never make the same
    one); returns the names of those it made."""
    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    for table in HISTORY_TABLES:
        conn.execute(text(f"LOCK TABLE {table} IN SHARE UPDATE EXCLUSIVE MODE"))
    partitions = read_partitions(conn)
    spans = {table: [p.span for p in partitions if p.table == table] for table in HISTORY_TABLES}
    made = []
    for t in sorted(set(times)):
        for table in HISTORY_TABLES:
            span = span_to_create(t, interval_s, spans[table])
            if span is not None:
                _attach_new(conn, table, span)
                spans[table].append(span)
                made.append(partition_name(table, span))
    return made


def _attach_new(conn: Connection, table: str, span: Span) -> None:
    assert span.start is not None and span.end is not None
    name = partition_name(table, span)
    options = f" WITH (fillfactor = {FILLFACTOR[table]})" if table in FILLFACTOR else ""
    taken = conn.scalar(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": name})
    if taken:
        raise RuntimeError(
            f"a table named {name} exists but is not a partition of {table} (left by an "
            "interrupted retention run?): run `ethhook db retention` to drop it"
        )
    conn.execute(text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS){options}"))
    conn.execute(text(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES {sql_bounds(span)}"))


def ensure_ahead(engine: Engine, now: datetime, interval_s: int | None = None) -> None:
    """The partitions of the previous interval, this one and the next three (beat, db upgrade)."""
    interval_s = interval_s or get_settings().partition_interval_s
    ensure_partitions(engine, times_ahead(now, interval_s), interval_s)


def forget_partitions(bind: Bind | None = None) -> None:
    """Forget what this process knows of the partitions (after dropping some, or an insert that
    found none): the next write reads pg_catalog again."""
    _known.forget(None if bind is None else str(engine_of(bind).url))


def is_missing_partition(exc: BaseException) -> bool:
    """Whether a statement failed because a row's partition does not exist (any more)."""
    orig = getattr(exc, "orig", None)
    return (
        isinstance(exc, DBAPIError)
        and getattr(orig, "pgcode", None) == _CHECK_VIOLATION
        and "no partition of relation" in str(orig)
    )


def writing(session: Session, times: Iterable[datetime], write: Callable[[], T]) -> T:
    """`write()` (an INSERT of history rows with these event times), once their partitions exist.

    A row old enough for retention to be dropping its partition right now is written in a
    savepoint: if its partition went away meanwhile, it is made again and the write retried once.
    Any other write that finds no partition makes this process read pg_catalog again next time.
    """
    times = set(times)
    ensure_partitions(session, times)
    if not is_postgres(session) or not times:
        return write()
    settings = get_settings()
    interval = timedelta(seconds=settings.partition_interval_s)
    at_risk = min(times) < retention_cutoff(utcnow(), settings.retention_days) + interval
    try:
        if not at_risk:
            return write()
        try:
            with session.begin_nested():
                return write()
        except DBAPIError as exc:
            if not is_missing_partition(exc):
                raise
            forget_partitions(session)
            ensure_partitions(session, times)
            return write()
    except DBAPIError as exc:
        if is_missing_partition(exc):
            forget_partitions(session)
        raise
