"""Delivery statistics from the rollups beside the same statistics from the raw attempt rows.

Seeds N attempt rows (default 10,000,000) with generate_series: two attempts per delivery, spread
evenly over the last 30 days and over E endpoints (default 500); outcomes and durations are
deterministic functions of the attempt id (~90 % 2xx, 5 % 5xx, 2 % 4xx, 3 % timeouts; durations
skewed, mean ~65 ms; a delivery whose two attempts failed is `failed`). The rollups (minute, hour
and day rows) are built the way record() builds them, aggregated in one INSERT … SELECT … GROUP
BY per period, in time order as production writes them. Then, for the
last 24 hours and 7 days, `delivery_stats` (median of --runs calls) beside the baseline: the same
counts and exact percentiles from `delivery_attempts` joined to `deliveries` (the naive query),
checking that both give the same counts. Last, record() for a flush of 50 results with and
without its rollup upsert (rolled back after each call; the rollup rows it updates exist).

Usage: python -m bench.stats_bench [--attempts 10000000] [--endpoints 500] [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timedelta
from typing import Any

import bench.common as c

FUNCTIONS = """
CREATE FUNCTION pg_temp.bench_code(i bigint) RETURNS int IMMUTABLE LANGUAGE sql AS $$
  SELECT CASE WHEN k < 922 THEN 200 WHEN k < 973 THEN 500 WHEN k < 993 THEN 404 END
  FROM (SELECT hashint8(i) & 1023 AS k) h $$;
CREATE FUNCTION pg_temp.bench_ms(i bigint) RETURNS float8 IMMUTABLE LANGUAGE sql AS $$
  SELECT CASE WHEN pg_temp.bench_code(i) IS NULL THEN 10000 + (hashint8(i + 1) & 1023)
    ELSE 5 - 60 * ln(((hashint8(i + 7777777) & 1048575) + 0.5) / 1048576.0) END $$;
CREATE FUNCTION pg_temp.bench_ok(i bigint) RETURNS bool IMMUTABLE LANGUAGE sql AS $$
  SELECT coalesce(pg_temp.bench_code(i) = 200, false) $$;
"""

# Attempt i (1..:n) of delivery (i + 1) / 2 starts :days before :now plus its share of the period.
SEED = [
    "INSERT INTO endpoints (id, application_id, url, secret, event_signatures, confirmations,"
    " active, created_at, updated_at) SELECT g, (SELECT id FROM applications WHERE name ="
    " 'default'), 'http://127.0.0.1:9/e' || g, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',"
    " '[]'::json, 0, true, :now, :now FROM generate_series(1, :e) g",
    "INSERT INTO events (id, event_at, chain_id, block_number, block_hash, block_timestamp,"
    " transaction_hash, transaction_index, log_index, address, topics, data, removed, created_at,"
    " matched_at) SELECT 'ev' || g, :now, 1, g, '0x' || md5(g::text),"
    " extract(epoch FROM :now)::bigint, '0x' || md5('t' || g), 0, 0,"
    " '0x' || lpad('1', 40, '0'), '[]'::json, '0x', false, :now, :now"
    " FROM generate_series(1, (:n / 2 + :e - 1) / :e) g",
    "INSERT INTO deliveries (id, event_at, endpoint_id, event_id, kind, status, attempts,"
    " last_status_code, created_at, updated_at)"
    " SELECT g, :now, (g - 1) % :e + 1, 'ev' || ((g - 1) / :e + 1), 'event.instant',"
    " CASE WHEN pg_temp.bench_ok(2 * g - 1) OR pg_temp.bench_ok(2 * g) THEN 'succeeded'"
    " ELSE 'failed' END, 2, pg_temp.bench_code(2 * g), t, t"
    " FROM generate_series(1, :n / 2) g,"
    " LATERAL (SELECT :now - make_interval(secs => :days * 86400.0 * (:n - 2 * g) / :n)) s(t)",
    "INSERT INTO delivery_attempts (id, event_at, delivery_id, attempt_number, started_at,"
    " duration_ms, status_code, error)"
    " SELECT i, :now, (i + 1) / 2, 2 - i % 2, :now - make_interval(secs => :days * 86400.0 * (:n - i) / :n),"
    " pg_temp.bench_ms(i), pg_temp.bench_code(i),"
    " CASE WHEN pg_temp.bench_code(i) IS NULL THEN 'read timeout after 10s' END"
    " FROM generate_series(1, :n / 2 * 2) i",
]

BUCKETS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


def _rollup_sql() -> list[str]:
    """The rollups of the seeded attempts, as record() would have added them up."""
    lower = (0, *BUCKETS)
    latency = [
        f"count(*) FILTER (WHERE a.duration_ms > {lo} AND a.duration_ms <= {hi})"
        for lo, hi in zip(lower, BUCKETS, strict=False)
    ] + [f"count(*) FILTER (WHERE a.duration_ms > {BUCKETS[-1]})"]
    columns = (
        "endpoint_id, period_s, period_start, attempts, succeeded, client_errors, server_errors,"
        " no_response, dead_lettered, duration_ms_total, "
        + ", ".join(f"latency_{b}ms" for b in BUCKETS)
        + ", latency_inf"
    )
    minutes = (
        f"INSERT INTO delivery_rollups ({columns}) SELECT d.endpoint_id, 60,"
        " date_trunc('minute', a.started_at), count(*),"
        " count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299),"
        " count(*) FILTER (WHERE a.status_code BETWEEN 400 AND 499),"
        " count(*) FILTER (WHERE a.status_code BETWEEN 500 AND 599),"
        " count(*) FILTER (WHERE a.status_code IS NULL),"
        " count(*) FILTER (WHERE a.attempt_number = 2 AND d.status = 'failed'),"
        " sum(a.duration_ms), " + ", ".join(latency) + " FROM delivery_attempts a"
        " JOIN deliveries d ON d.id = a.delivery_id GROUP BY 1, 3 ORDER BY 3, 1"
    )
    sums = ", ".join(f"sum({name.strip()})" for name in columns.split(",")[3:])
    coarser = [
        f"INSERT INTO delivery_rollups ({columns}) SELECT endpoint_id, {period_s},"
        f" date_trunc('{unit}', period_start), {sums} FROM delivery_rollups"
        f" WHERE period_s = {finer_s} GROUP BY 1, 3 ORDER BY 3, 1"
        for finer_s, period_s, unit in ((60, 3600, "hour"), (3600, 86400, "day"))
    ]
    return [minutes, *coarser]


def seed(attempts: int, endpoints: int, days: int, now: datetime) -> dict[str, float]:
    """Seed with foreign-key triggers off and the plain indexes built afterwards (faster)."""
    from sqlalchemy import text

    from ethhook.db import get_engine
    from ethhook.db.partitions import ensure_partitions

    timings: dict[str, float] = {}
    params = {"n": attempts, "e": endpoints, "days": days, "now": now}
    # Every row's event at `now` (the history tables are partitioned by their event's time).
    ensure_partitions(get_engine(), [now])
    with get_engine().begin() as conn:
        conn.execute(text("SET session_replication_role = replica; SET TIME ZONE 'UTC'"))
        conn.execute(text("SET maintenance_work_mem = '512MB'; SET work_mem = '256MB'"))
        conn.execute(text(FUNCTIONS))
        indexes = conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN"
                " ('deliveries', 'delivery_attempts') AND indexname NOT IN"
                " (SELECT conname FROM pg_constraint)"
            )
        ).all()
        for name, _ in indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
        for sql, table in zip(SEED, ("endpoints", "events", "deliveries", "attempts"), strict=True):
            timings[table] = c.timed(lambda sql=sql: conn.execute(text(sql), params))
            c.log(f"stats: seeded {table} in {timings[table]:.1f}s")
        # A partitioned table's index is listed ON ONLY the parent: made again for every partition.
        timings["indexes"] = c.timed(
            lambda: [conn.execute(text(d.replace(" ON ONLY ", " ON "))) for _, d in indexes]
        )
        for sql, period in zip(_rollup_sql(), ("minute", "hour", "day"), strict=True):
            timings[f"rollups_{period}"] = c.timed(lambda sql=sql: conn.execute(text(sql)))
            c.log(f"stats: {period} rollups built in {timings[f'rollups_{period}']:.1f}s")
        for table in ("endpoints", "deliveries", "delivery_attempts"):
            conn.execute(text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))"))
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        timings["vacuum"] = c.timed(lambda: conn.execute(text("VACUUM ANALYZE")))
    return timings


NAIVE = """
SELECT d.endpoint_id, count(*) AS attempts,
  count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299) AS succeeded,
  count(*) FILTER (WHERE a.status_code BETWEEN 400 AND 499) AS client_errors,
  count(*) FILTER (WHERE a.status_code BETWEEN 500 AND 599) AS server_errors,
  count(*) FILTER (WHERE a.status_code IS NULL) AS no_response,
  avg(a.duration_ms) AS mean_ms,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_ms) AS p50,
  percentile_cont(0.95) WITHIN GROUP (ORDER BY a.duration_ms) AS p95
FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE a.started_at >= :since GROUP BY d.endpoint_id ORDER BY d.endpoint_id
"""


def measure_window(label: str, since: datetime, now: datetime, runs: int) -> dict[str, Any]:
    """delivery_stats and the naive query, alternating, `runs` times each; checks their counts."""
    from sqlalchemy import text

    from ethhook.db import session_scope
    from ethhook.service.stats import delivery_stats

    fast: list[float] = []
    naive: list[float] = []
    for _ in range(runs):
        with session_scope() as session:
            started = time.perf_counter()
            stats = delivery_stats(session, since, now)
            fast.append(time.perf_counter() - started)
        with session_scope() as session:
            started = time.perf_counter()
            exact = session.execute(text(NAIVE), {"since": since}).mappings().all()
            naive.append(time.perf_counter() - started)
    names = ("attempts", "succeeded", "client_errors", "server_errors", "no_response")
    mismatched = sum(
        1
        for s, e in zip(stats, exact, strict=False)
        if s.endpoint_id != e["endpoint_id"] or any(getattr(s, n) != e[n] for n in names)
    ) + abs(len(stats) - len(exact))
    p95_error = [
        abs((s.latency_p95_ms or 0) - e["p95"]) / e["p95"]
        for s, e in zip(stats, exact, strict=False)
    ]
    result = {
        "window": label,
        "stats_ms": [round(t * 1000, 2) for t in fast],
        "naive_ms": [round(t * 1000, 1) for t in naive],
        "stats_median_ms": round(c.median(fast) * 1000, 2),
        "naive_median_ms": round(c.median(naive) * 1000, 1),
        "endpoints": len(stats),
        "attempts": sum(s.attempts for s in stats),
        "mismatched_endpoints": mismatched,
        "p95_relative_error_median": round(c.median(p95_error), 3),
    }
    result["ratio"] = round(result["naive_median_ms"] / result["stats_median_ms"], 1)
    c.log(f"stats: {label}: {result}")
    return result


def measure_record(flushes: int, size: int = 50) -> dict[str, Any]:
    """record() for `size` results, with and without its rollup upsert, alternating; each call
    is rolled back so that every call meets the same rows (the rollup rows exist: an update)."""
    from sqlalchemy import text

    from ethhook.config import get_settings
    from ethhook.db import session_scope
    from ethhook.db.models import utcnow
    from ethhook.deliver import http, store
    from ethhook.deliver.store import attempts

    with session_scope() as session:
        ids = session.scalars(
            text("SELECT id FROM deliveries WHERE endpoint_id = 1 ORDER BY id DESC LIMIT :n"),
            {"n": size},
        ).all()
        session.execute(
            text(
                "UPDATE deliveries SET status = 'pending', lease_token = 'bench' WHERE id = ANY(:ids)"
            ),
            {"ids": list(ids)},
        )
        endpoint = store.load_endpoint(session, 1, get_settings(), utcnow())
    assert endpoint is not None
    started_at = utcnow()
    results = [
        store.Result(
            store.Work(i, 0, "wh", b"{}", 0, started_at),
            started_at,
            http.HttpOutcome(200, 20.0 + k),
        )
        for k, i in enumerate(ids)
    ]
    with session_scope() as session:  # the minute's and the hour's rows, as after a first flush
        store.record(session, endpoint, results[:1], "other", utcnow())
    upsert = attempts.upsert_rollups  # what record() calls
    times: dict[str, list[float]] = {"with": [], "without": []}
    for i in range(2 * flushes):
        variant = "with" if i % 2 == 0 else "without"
        attempts.upsert_rollups = upsert if variant == "with" else lambda *_: None
        with session_scope() as session:
            session.connection()
            started = time.perf_counter()
            store.record(session, endpoint, results, "bench", utcnow())
            times[variant].append(time.perf_counter() - started)
            session.rollback()
    attempts.upsert_rollups = upsert
    with_ms, without_ms = c.median(times["with"]) * 1000, c.median(times["without"]) * 1000
    return {
        "flush_size": size,
        "flushes": flushes,
        "with_rollup_ms": round(with_ms, 3),
        "without_rollup_ms": round(without_ms, 3),
        "added_ms": round(with_ms - without_ms, 3),
        "added_pct": round(100 * (with_ms - without_ms) / without_ms, 1),
    }


def report(
    args: argparse.Namespace,
    seeded: dict[str, Any],
    windows: list[dict[str, Any]],
    rec: dict[str, Any],
) -> str:
    lines = [
        f"{args.attempts:,} attempts, {args.endpoints} endpoints, {args.days} days;"
        f" {seeded['rollup_rows']:,} rollup rows; seeding {sum(seeded['timings'].values()):.0f} s\n",
        f"| window | delivery_stats, median of {args.runs} (ms) | runs | naive query, median (ms) | runs | ratio | endpoints, attempts | counts differ | P95 estimate vs exact (median rel. error) |",
        "|---|---:|---|---:|---|---:|---|---:|---:|",
    ]
    for w in windows:
        lines.append(
            f"| {w['window']} | {w['stats_median_ms']:.1f} | {', '.join(f'{t:.1f}' for t in w['stats_ms'])}"
            f" | {w['naive_median_ms']:,.0f} | {', '.join(f'{t:,.0f}' for t in w['naive_ms'])}"
            f" | {w['ratio']:,.0f}× | {w['endpoints']}, {w['attempts']:,} | {w['mismatched_endpoints']}"
            f" | {100 * w['p95_relative_error_median']:.1f} % |"
        )
    lines.append(
        f"\nrecord() of {rec['flush_size']} results, median of {rec['flushes']}: "
        f"{rec['with_rollup_ms']:.2f} ms with the rollup upsert, {rec['without_rollup_ms']:.2f} ms"
        f" without: +{rec['added_ms']:.2f} ms (+{rec['added_pct']:.0f} %)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--attempts", type=int, default=10_000_000)
    p.add_argument("--endpoints", type=int, default=500)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--flushes", type=int, default=300, help="record() calls per variant")
    p.add_argument("--quick", action="store_true", help="1,000,000 attempts, 3 runs")
    args = p.parse_args(argv)
    if args.quick:
        args.attempts, args.runs, args.flushes = 1_000_000, 3, 100
    c.on_sigterm_exit()
    from sqlalchemy import func, select

    from ethhook.db import session_scope
    from ethhook.db.models import delivery_rollups, utcnow

    now = utcnow().replace(second=0, microsecond=0)
    with c.services():
        timings = seed(args.attempts, args.endpoints, args.days, now)
        with session_scope() as session:
            rows = session.scalar(select(func.count()).select_from(delivery_rollups)) or 0
        seeded = {"timings": timings, "rollup_rows": rows}
        windows = [
            measure_window(label, now - delta, now, args.runs)
            for label, delta in (("24 h", timedelta(hours=24)), ("7 days", timedelta(days=7)))
        ]
        rec = measure_record(args.flushes)
    out = {"args": vars(args), "seeded": seeded, "windows": windows, "record": rec}
    c.write_json(c.ROOT / "bench" / "out" / "stats.json", out)
    print(f"\n## Delivery statistics ({'quick' if args.quick else 'full'})\n")
    print(report(args, seeded, windows, rec))


if __name__ == "__main__":
    main()
