"""Retention on PostgreSQL: whole partitions of the history tables past ETHHOOK_RETENTION_DAYS are
detached (CONCURRENTLY: readers and writers of the table are never locked out) and dropped, so
the cost is a few catalog changes per partition, whatever the rows.

A partition whose interval still holds a waiting or pending delivery (its retries are a promise)
or an event the matcher has not seen is kept, with its interval's partitions of the other two
tables; the report, the log, `retention_held_partitions` and `retention_overdue_seconds` say so.
A delivery of an endpoint that is disabled (its deliveries wait, within retention, for it to be
enabled again) or gone holds nothing. Deliveries go first, then attempts, then
events: a reader never finds a delivery whose event is gone. A row written into a partition
between its check and its detach is found by a second check once the partition is detached (and
alone): the partition is then attached again and kept.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from ethhook import metrics
from ethhook.db.partition_plan import (
    HISTORY_TABLES,
    Span,
    is_partition_name,
    overlapping,
    past_retention,
    retention_cutoff,
    sql_bounds,
    table_of,
)
from ethhook.db.partitions import LOCK_TIMEOUT, Partition, forget_partitions, list_partitions

log = logging.getLogger(__name__)

# The advisory lock one retention run holds ("ethhook" in ASCII).
RUN_LOCK = 0x657468686F6F6B
# Within one interval: deliveries, then attempts, then events.
_ORDER = {"deliveries": 0, "delivery_attempts": 1, "events": 2}


@dataclass(frozen=True)
class Held:
    """A partition past retention that is kept, and why."""

    table: str
    name: str
    span: Span | None  # None: a table an interrupted run detached (no range any more)
    reason: str


@dataclass
class RetentionReport:
    cutoff: datetime
    dry_run: bool
    dropped: list[Partition] = field(default_factory=list)  # or would be, in a dry run
    held: list[Held] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # detached tables dropped
    busy: bool = False  # another run was under way: this one did nothing

    def overdue_s(self) -> float:
        """How long the oldest kept partition has been past retention (0: none kept)."""
        ends = [h.span.end for h in self.held if h.span is not None and h.span.end is not None]
        return max(((self.cutoff - end).total_seconds() for end in ends), default=0.0)


def run_retention(
    engine: Engine, now: datetime, retention_days: float, dry_run: bool = False
) -> RetentionReport:
    """Drop (or, with `dry_run`, list) the history partitions past retention that hold nothing
    still to do; see the module's docstring. A run finding another under way (two beat processes
    by mistake) does nothing and says so in `busy`."""
    report = RetentionReport(retention_cutoff(now, retention_days), dry_run)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock:
        if not lock.scalar(text(f"SELECT pg_try_advisory_lock({RUN_LOCK})")):
            report.busy = True
            return report
        try:
            _run(engine, report)
        finally:
            lock.execute(text(f"SELECT pg_advisory_unlock({RUN_LOCK})"))
    return report


def _run(engine: Engine, report: RetentionReport) -> None:
    dry_run = report.dry_run
    partitions = list_partitions(engine)
    old = [p for p in partitions if past_retention(p.span, report.cutoff)]
    with engine.connect() as conn:
        held_spans = _holds(conn, old, report)
    for p in sorted(old, key=lambda p: (p.span.start or _BEGINNING, _ORDER[p.table])):
        if any(h.name == p.name for h in report.held):
            continue
        if overlapping(p.span, held_spans):
            report.held.append(Held(p.table, p.name, p.span, "kept with its interval"))
            continue
        reason = None if dry_run else _try_drop(engine, p)
        if reason is None:
            report.dropped.append(p)
        else:
            report.held.append(Held(p.table, p.name, p.span, reason))
            held_spans.append(p.span)
    _leftovers(engine, report)
    if not dry_run:
        forget_partitions(engine)
        _record(report)


_BEGINNING = datetime.min.replace(tzinfo=UTC)


def _try_drop(engine: Engine, p: Partition) -> str | None:
    """_drop, or why `p` is kept."""
    try:
        if _drop(engine, p):
            return None
    except DBAPIError as exc:
        if not is_lock_timeout(exc):
            raise
        log.warning("maintenance.retention.busy partition=%s", p.name)
        return "its table was busy (lock timeout): the next run tries again"
    return "a row to keep was written while it was being detached: attached again"


def _holds(conn: Connection, old: list[Partition], report: RetentionReport) -> list[Span]:
    """The spans of the old partitions that hold something still to do (added to the report)."""
    spans = []
    for p in old:
        reason = _hold_reason(conn, p.table, p.name)
        if reason is not None:
            report.held.append(Held(p.table, p.name, p.span, reason))
            spans.append(p.span)
    conn.rollback()
    return spans


def _hold_reason(conn: Connection, table: str, name: str) -> str | None:
    """Why partition (or detached table) `name` of `table` must be kept; None when nothing holds
    it. Each count reads a small partial index."""
    if table == "deliveries":
        unsent = conn.scalar(
            text(
                f"SELECT count(*) FROM {name} d WHERE d.status IN ('waiting', 'pending')"
                " AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = d.endpoint_id AND e.active)"
            )
        )
        return f"{unsent} waiting or pending deliveries" if unsent else None
    if table == "events":
        unmatched = conn.scalar(text(f"SELECT count(*) FROM {name} WHERE matched_at IS NULL"))
        return f"{unmatched} events not yet matched" if unmatched else None
    return None


def _drop(engine: Engine, p: Partition) -> bool:
    """Detach `p` without blocking its table's readers and writers, then drop it unless a row
    to keep arrived meanwhile (then attach it again); False when it was kept."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
        try:
            how = "FINALIZE" if p.detaching else "CONCURRENTLY"
            conn.execute(text(f"ALTER TABLE {p.table} DETACH PARTITION {p.name} {how}"))
        finally:
            conn.execute(text("RESET lock_timeout"))
    with engine.begin() as conn:
        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        conn.execute(text(f"LOCK TABLE {p.name} IN ACCESS EXCLUSIVE MODE"))
        if _hold_reason(conn, p.table, p.name) is not None:
            conn.execute(
                text(
                    f"ALTER TABLE {p.table} ATTACH PARTITION {p.name} FOR VALUES {sql_bounds(p.span)}"
                )
            )
            log.warning("maintenance.retention.reattached partition=%s", p.name)
            return False
        conn.execute(text(f"DROP TABLE {p.name}"))
    log.info("maintenance.retention.dropped partition=%s", p.name)
    return True


_DETACHED = text(
    "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND NOT c.relispartition"
    " AND c.relnamespace = to_regnamespace(current_schema())"
    " AND c.relname ~ '^(events|deliveries|delivery_attempts)_(p[0-9]{8}(t[0-9]{4})?|legacy)$'"
)


def _leftovers(engine: Engine, report: RetentionReport) -> None:
    """Tables a run interrupted between detach and drop left behind: dropped, unless one holds
    something still to do (then kept and reported: attach it again by hand)."""
    with engine.begin() as conn:
        names = [n for n in conn.scalars(_DETACHED) if is_partition_name(n)]
        for name in names:
            table = table_of(name)
            assert table is not None
            reason = _hold_reason(conn, table, name)
            if reason is not None:
                report.held.append(Held(table, name, None, f"detached, and holds {reason}"))
                log.error(
                    "maintenance.retention.detached_table_holds_work table=%s reason=%s; attach"
                    " it again (ops/runbooks/partitions.md)",
                    name,
                    reason,
                )
                continue
            if not report.dry_run:
                conn.execute(text(f"DROP TABLE {name}"))
            report.leftovers.append(name)


def _record(report: RetentionReport) -> None:
    dropped = Counter(p.table for p in report.dropped)
    held = Counter(h.table for h in report.held)
    metrics.record_retention(
        {t: dropped[t] for t in HISTORY_TABLES},
        {t: held[t] for t in HISTORY_TABLES},
        report.overdue_s(),
    )
    if report.dropped or report.held or report.leftovers:
        log.info(
            "maintenance.retention.done dropped=%d held=%d leftovers=%d%s",
            len(report.dropped),
            len(report.held),
            len(report.leftovers),
            "".join(f" held:{h.name}={h.reason!r}" for h in report.held),
        )


def is_lock_timeout(exc: BaseException) -> bool:
    """A DDL statement gave up waiting for its lock (lock_not_available): tried again next run."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "pgcode", None) == "55P03"
