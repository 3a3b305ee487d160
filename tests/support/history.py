"""History at volume for the benchmarks: events, deliveries and attempts seeded in bulk SQL
(generate_series), in the project's own row shapes, into partitions made by its own
`ensure_partitions`.

Every column of each history table gets an expression below (None: the column's default, its
sequence); tests/unit/test_history_seed.py fails when a model gains a column this module does not
know. Events are what the listener stores: a block every ≥ 12 s (its logs share its time, the
partition key), hash block ids, and the listener's own event id (`types.event_id_for`, in SQL:
sha256 of "chain:block hash:log index"). Each event has one delivery and each delivery one
attempt, to the history endpoints in turn; a few a day go to a failing endpoint instead and are
where its schedule has them: pending, with their attempts so far and the next one ahead, while the
schedule still has retries for them; dead-lettered (`failed`, every attempt made) once it has not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

DAY = timedelta(days=1)
CHAIN_ID = 1
BLOCK_S = 12  # the slowest block rate the seeder writes: one block every 12 s or more
ADDRESS = "0x000000000000000000000000000000000000abcd"  # no bench chain's contract
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
HISTORY_TABLES = ("events", "deliveries", "delivery_attempts")

# The columns of the generated blocks' logs (FROM clause of the events insert): bn block number,
# li log index, ts block time (epoch s), t the same as timestamptz, bh block hash.
_BLOCKS = (
    "(SELECT ts / :block_s AS bn, li, ts, to_timestamp(ts) AS t,"
    " '0x' || md5((ts / :block_s)::text) || md5((ts / :block_s)::text || 'b') AS bh"
    " FROM (SELECT :t0 + floor(b * :spacing)::bigint AS ts, li"
    " FROM generate_series(0, :blocks - 1) b, generate_series(0, :per_block - 1) li"
    " WHERE b * :per_block + li < :rows) g) s"
)
EVENT_COLUMNS: dict[str, str | None] = {
    # types.event_id_for: "evt_" + the first 32 hex digits of sha256("chain:hash:log index").
    "id": "'evt_' || left(encode(sha256(convert_to(:chain || ':' || s.bh || ':' || s.li,"
    " 'UTF8')), 'hex'), 32)",
    "event_at": "s.t",
    "chain_id": ":chain",
    "block_number": "s.bn",
    "block_hash": "s.bh",
    "block_timestamp": "s.ts",
    "transaction_hash": "'0x' || md5(s.bn || 't' || s.li) || md5(s.li || 't' || s.bn)",
    "transaction_index": "s.li",
    "log_index": "s.li",
    "address": ":address",
    "topics": "CAST(:topics AS json)",
    "data": "'0x' || lpad(to_hex(s.bn * 1000 + s.li), 64, '0')",
    "removed": "false",
    "replay_only": "false",
    "created_at": "s.t + interval '1 second'",
    "matched_at": "s.t + interval '1100 milliseconds'",
    "lease_token": "NULL",
    "lease_expires_at": "NULL",
}

# The day's events as the deliveries insert reads them: f (the failing endpoint's), tried (the
# attempts its schedule has made by :now for a failing one), ordinal (the event's place in the
# chain: the endpoints take events in turn and number them).
_EVENTS = (
    "(SELECT e.id, e.event_at, e.block_number, e.log_index,"
    " e.block_number * :per_block + e.log_index AS ordinal,"
    " e.log_index = 0 AND e.block_number % :fail_every = 0 AND :failing > 0 AS f,"
    " width_bucket(extract(epoch FROM CAST(:now AS timestamptz) - e.event_at)::float8,"
    " CAST(:cumulative AS float8[])) AS tried"
    " FROM events e WHERE e.event_at >= :start AND e.event_at < :end) s"
)
DELIVERY_COLUMNS: dict[str, str | None] = {
    "id": None,
    "event_at": "s.event_at",
    "endpoint_id": "CASE WHEN s.f THEN :failing"
    " ELSE (CAST(:endpoints AS int[]))[1 + s.ordinal % :n_endpoints] END",
    "event_id": "s.id",
    "kind": "'event.instant'",
    "status": "CASE WHEN NOT s.f THEN 'succeeded' WHEN s.tried < :n_attempts THEN 'pending'"
    " ELSE 'failed' END",
    "attempts": "CASE WHEN s.f THEN least(s.tried, :n_attempts) ELSE 1 END",
    "next_attempt_at": "CASE WHEN s.f AND s.tried < :n_attempts THEN s.event_at"
    " + make_interval(secs => (CAST(:cumulative AS float8[]))[s.tried + 1]) END",
    "release_block": "NULL",
    "release_tag": "NULL",
    "lease_token": "NULL",
    "lease_expires_at": "NULL",
    "sequence": "CASE WHEN s.f THEN s.ordinal ELSE s.ordinal / :n_endpoints + 1 END",
    "origin": "'live'",
    "skipped_at": "NULL",
    "last_status_code": "CASE WHEN s.f THEN 503 ELSE 200 END",
    "last_error": "CASE WHEN s.f THEN 'HTTP 503' END",
    "created_at": "s.event_at + interval '1100 milliseconds'",
    "updated_at": "CASE WHEN s.f THEN s.event_at + make_interval(secs =>"
    " (CAST(:cumulative AS float8[]))[least(s.tried, :n_attempts)] + 1.2)"
    " ELSE s.event_at + interval '1200 milliseconds' END",
}

# Deliveries with their attempt number n: every delivery's first attempt, then the failing
# endpoint's later ones (a few a day, found through the open deliveries' partial index).
_FIRST_ATTEMPTS = (
    "(SELECT d.*, 1 AS n FROM deliveries d WHERE d.event_at >= :start AND d.event_at < :end) s"
)
_LATER_ATTEMPTS = (
    "(SELECT d.*, n FROM deliveries d, generate_series(2, d.attempts) n"
    " WHERE d.event_at >= :start AND d.event_at < :end AND d.endpoint_id = :failing"
    " AND d.status IN ('waiting', 'pending', 'failed')) s"
)
ATTEMPT_COLUMNS: dict[str, str | None] = {
    "id": None,
    "event_at": "s.event_at",
    "delivery_id": "s.id",
    "attempt_number": "s.n",
    "started_at": "s.event_at + make_interval(secs => (CAST(:cumulative AS float8[]))[s.n] + 1.15)",
    "duration_ms": "CASE WHEN s.status = 'succeeded' THEN 8 + s.id % 40 ELSE 30 + s.id % 20 END",
    "status_code": "CASE WHEN s.status = 'succeeded' THEN 200 ELSE 503 END",
    "error": "NULL",
    "response_body": "CASE WHEN s.status = 'succeeded' THEN 'ok' ELSE 'Service Unavailable' END",
}

COLUMNS = {"events": EVENT_COLUMNS, "deliveries": DELIVERY_COLUMNS}
COLUMNS["delivery_attempts"] = ATTEMPT_COLUMNS


def insert_sql(table: str, source: str) -> str:
    """INSERT INTO `table` every column given an expression, SELECTed from `source`."""
    columns = {name: sql for name, sql in COLUMNS[table].items() if sql is not None}
    return (
        f"INSERT INTO {table} ({', '.join(columns)})"
        f" SELECT {', '.join(columns.values())} FROM {source}"
    )


@dataclass(frozen=True)
class Plan:
    """Who the seeded deliveries go to, and the failing endpoint's schedule."""

    endpoints: Sequence[int]  # the history endpoints, taking events in turn
    failing: int = 0  # the failing endpoint's id (0: none)
    failing_per_day: int = 0
    schedule_s: Sequence[float] = (0.0,)

    def cumulative(self) -> list[float]:
        """When each attempt is made, in seconds after the event (the schedule without jitter)."""
        return list(accumulate(float(s) for s in self.schedule_s))


def block_layout(rows: int, span_s: float) -> tuple[int, int, float]:
    """(blocks, logs per block, seconds between blocks) for `rows` events over `span_s`: as
    few logs per block as keeps the blocks ≥ BLOCK_S apart (their numbers are time / BLOCK_S)."""
    per_block = max(1, math.ceil(rows * BLOCK_S / span_s))
    blocks = math.ceil(rows / per_block)
    return blocks, per_block, span_s / blocks


def seed_span(start: datetime, end: datetime, rows: int, plan: Plan, now: datetime) -> None:
    """`rows` events, their deliveries and attempts, with event times from `start` to `end`."""
    from sqlalchemy import text

    from ethhook.db import get_engine
    from ethhook.db.partitions import ensure_partitions

    if rows <= 0:
        return
    span_s = (end - start).total_seconds()
    blocks, per_block, spacing = block_layout(rows, span_s)
    engine = get_engine()
    ensure_partitions(engine, [start, end - timedelta(microseconds=1)])
    cumulative = plan.cumulative()
    fail_every = max(1, blocks // plan.failing_per_day) if plan.failing_per_day else 1
    params: dict[str, Any] = {
        "t0": math.ceil(start.timestamp()),
        "block_s": BLOCK_S,
        "spacing": spacing,
        "blocks": blocks,
        "per_block": per_block,
        "rows": rows,
        "chain": CHAIN_ID,
        "address": ADDRESS,
        "topics": f'["{TRANSFER_TOPIC}"]',
        "start": start,
        "end": end,
        "now": now,
        "endpoints": list(plan.endpoints),
        "n_endpoints": len(plan.endpoints),
        "failing": plan.failing,
        "fail_every": fail_every,
        "cumulative": cumulative,
        "n_attempts": len(cumulative),
    }
    with engine.begin() as conn:
        for sql in (
            insert_sql("events", _BLOCKS),
            insert_sql("deliveries", _EVENTS),
            insert_sql("delivery_attempts", _FIRST_ATTEMPTS),
            insert_sql("delivery_attempts", _LATER_ATTEMPTS),
        ):
            conn.execute(text(sql), params)


def days_ending(now: datetime, days: int) -> list[tuple[datetime, datetime, float]]:
    """(start, end, share of a day) of the `days` whole UTC days before today, then today's
    part up to `now`: history that ends now, with every past day a whole partition."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    spans = [(today - DAY * (days - i), today - DAY * (days - i - 1), 1.0) for i in range(days)]
    elapsed = (now - today).total_seconds()
    if elapsed >= BLOCK_S:
        spans.append((today, now, elapsed / 86400))
    return spans


def seed_history(
    now: datetime, days: int, per_day: int, plan: Plan, say: Callable[[str], None]
) -> dict[str, Any]:
    """`days` whole days of `per_day` events (and their deliveries and attempts) and today's so
    far at the same rate, then ANALYZE; returns the rows seeded and the seconds taken."""
    from sqlalchemy import text

    from ethhook.db import get_engine

    began = time.perf_counter()
    seeded = 0
    for start, end, share in days_ending(now, days):
        rows = round(per_day * share)
        day_began = time.perf_counter()
        seed_span(start, end, rows, plan, now)
        seeded += rows
        say(
            f"seeded {start:%Y-%m-%d}: {rows:,} events, deliveries and attempts"
            f" in {time.perf_counter() - day_began:.0f} s ({seeded:,} so far)"
        )
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in HISTORY_TABLES:
            conn.execute(text(f"ANALYZE {table}"))
    return {"rows_per_table": seeded, "seed_s": time.perf_counter() - began}
