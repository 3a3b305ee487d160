"""`ethhook db retention` and `ethhook db partitions`: the history tables' partitions, and
retention run now."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from ethhook.cli.common import Commands, add_command
from ethhook.cli.output import emit, json_default, table
from ethhook.config import Settings

NOT_PARTITIONED = (
    "partitions are a PostgreSQL feature: on SQLite (the demo) events, deliveries and "
    "delivery_attempts are plain tables"
)


def register(group: Commands) -> None:
    retention = add_command(
        group,
        "retention",
        cmd_db_retention,
        "run retention now: drop the history partitions past ETHHOOK_RETENTION_DAYS",
    )
    retention.add_argument(
        "--dry-run", action="store_true", help="say what would be dropped, drop nothing"
    )
    retention.epilog = (
        "A partition whose interval still holds a waiting or pending delivery, or an event not "
        "yet matched, is kept, and said why. Beat runs the same job every hour."
    )
    partitions = add_command(
        group,
        "partitions",
        cmd_db_partitions,
        "list the partitions of events, deliveries and delivery_attempts",
    )
    partitions.add_argument(
        "--exact",
        action="store_true",
        help="count each partition's rows (reads them all) instead of PostgreSQL's estimate",
    )


def cmd_db_retention(args: argparse.Namespace, settings: Settings) -> int:
    from ethhook.db import get_engine, session_scope
    from ethhook.db.dialect import is_postgres
    from ethhook.db.models import utcnow
    from ethhook.maintenance import jobs
    from ethhook.maintenance.retention import run_retention

    engine, now = get_engine(), utcnow()
    if not is_postgres(engine):
        return _sqlite_retention(args, settings, now)
    report = run_retention(engine, now, settings.retention_days, dry_run=args.dry_run)
    rollups = 0
    if not args.dry_run and not report.busy:
        with session_scope() as session:
            rollups = jobs.delete_old_rollups(session, report.cutoff)
    data = {
        "dry_run": report.dry_run,
        "busy": report.busy,
        "cutoff": report.cutoff,
        "dropped": [_partition(p) for p in report.dropped],
        "held": [
            {"table": h.table, "name": h.name, "reason": h.reason, **_span(h.span)}
            for h in report.held
        ],
        "leftovers": report.leftovers,
        "rollup_rows_deleted": rollups,
    }
    emit(args, data, lambda: _retention_text(report, rollups))
    return 0


def _retention_text(report: Any, rollups: int) -> str:
    if report.busy:
        return "another retention run is under way; nothing done"
    verb = "would drop" if report.dry_run else "dropped"
    before = json_default(report.cutoff)
    names = ", ".join(p.name for p in report.dropped) or "none"
    lines = [f"{verb} {len(report.dropped)} partitions past retention (before {before}): {names}"]
    lines += [f"kept {h.name}: {h.reason}" for h in report.held]
    if report.leftovers:
        left = ", ".join(report.leftovers)
        lines.append(f"{verb} tables an interrupted run had detached: {left}")
    if not report.dry_run:
        lines.append(f"deleted {rollups} rollup rows past retention")
    return "\n".join(lines)


def _sqlite_retention(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    from ethhook.db import session_scope
    from ethhook.maintenance import jobs

    days = f"{settings.retention_days:g}"
    if args.dry_run:
        line = (
            f"{NOT_PARTITIONED}; retention deletes the finished deliveries, their attempts and "
            f"events older than {days} days in batches (run without --dry-run to do it now)"
        )
        emit(args, {"dry_run": True, "partitioned": False}, lambda: line)
        return 0
    with session_scope() as session:
        counts = jobs.cleanup(session, now, settings.retention_days, settings.cleanup_batch_size)
    deleted = ", ".join(f"{n} {what}" for what, n in counts.items())
    emit(
        args,
        {"dry_run": False, "partitioned": False, "deleted": counts},
        lambda: f"{NOT_PARTITIONED}; deleted rows older than {days} days: {deleted}",
    )
    return 0


def cmd_db_partitions(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import text

    from ethhook.db import get_engine
    from ethhook.db.dialect import is_postgres
    from ethhook.db.partitions import list_partitions

    engine = get_engine()
    if not is_postgres(engine):
        emit(args, [], lambda: NOT_PARTITIONED)
        return 0
    found = list_partitions(engine)
    rows: dict[str, int] = {}
    if args.exact:
        with engine.connect() as conn:
            rows = {p.name: int(conn.scalar(text(f"SELECT count(*) FROM {p.name}"))) for p in found}
    data = [{**_partition(p), **({"rows": rows[p.name]} if args.exact else {})} for p in found]
    emit(args, data, lambda: _partitions_text(data, args.exact))
    return 0


def _partitions_text(data: list[dict[str, Any]], exact: bool) -> str:
    if not data:
        return "no partitions (run `ethhook db upgrade`)"
    body = [
        (
            d["table"],
            d["name"],
            _when(d["from"], "(any earlier)"),
            _when(d["to"], "(any later)"),
            _count(d["rows"], exact),
            _size(d["bytes"]),
        )
        for d in data
    ]
    return table(body, ("table", "partition", "from", "to", "rows", "size"))


def _partition(p: Any) -> dict[str, Any]:
    return {
        "table": p.table,
        "name": p.name,
        **_span(p.span),
        "rows": p.rows_estimate if p.rows_estimate >= 0 else None,
        "bytes": p.bytes,
        "detaching": p.detaching,
    }


def _span(span: Any) -> dict[str, datetime | None]:
    return {"from": span.start, "to": span.end} if span else {"from": None, "to": None}


def _when(value: datetime | None, unbounded: str) -> str:
    return unbounded if value is None else json_default(value)


def _count(rows: int | None, exact: bool) -> str:
    if rows is None:
        return "?"  # never analysed
    return str(rows) if exact else f"~{rows}"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB"):
        if size < 1024:
            return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
