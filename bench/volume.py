"""A month-like history: the hot path, retention and the product's queries with D days × N rows a
day in each history table, beside an empty database, in one run.

`--seed-only` seeds the database at ETHHOOK_DATABASE_URL (migrated, without events) and stops:
D whole UTC days of N events before today, and today's so far at the same rate, each with one
delivery and its attempt (tests/support/history.py: the project's row shapes, its partitions, the
listener's event ids; a few a day to a failing endpoint, pending while its retries last).

Without it, two databases of the bench's own: an empty one and one with that history (seeded
here, or the one at --history-url, seeded before with --seed-only). Then:
* the one-endpoint burst (bench/pipeline_bench.py's `burst`: anvil, listener, match and deliver
  workers as workers/README.md runs them, the bench receiver; a bare requests loop beside it),
  a pipeline started afresh on each database for each run, the two alternating (empty first in
  odd runs, history first in even ones); webhooks/s and CPU per webhook, medians and the ratio;
* the due scan, claim, statistics and delivery-list queries on each (bench/volume_queries.py),
  timed, with the partitions their plans read;
* disk before and after retention; retention of the oldest day (the clock set so that exactly it
  is past ETHHOOK_RETENTION_DAYS), --runs times on the history database (one day each: a database
  given with --history-url has --runs days fewer afterwards), once on the empty one (its empty
  oldest day, the catalog work alone).

Usage: python -m bench.volume [--days 10] [--per-day 1000000] [--runs 3] [--events 5000]
       [--quick] [--keep | --history-url URL] [--json [PATH]]
       ETHHOOK_DATABASE_URL=… python -m bench.volume --seed-only --days D --per-day N
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# The caller's database (--seed-only): read before bench.common points the variable at its own.
CALLER_DATABASE_URL = os.environ.get("ETHHOOK_DATABASE_URL")

import bench.common as c  # noqa: E402
from bench.volume_report import report  # noqa: E402
from tests.support.history import ADDRESS, Plan, seed_history  # noqa: E402

HISTORY_ENDPOINTS = 10
FAILING_PER_DAY = 5
FAILING_URL = "http://127.0.0.1:9/failing"
TRANSFER = "Transfer(address indexed from, address indexed to, uint256 value)"
# A bench chain's blocks are numbered from 0; the history's are its block times / 12 (~1.5e8).
PIPELINE_BLOCKS = 10_000_000


def use_database(url: str) -> None:
    """Point this process, and every process it starts from now on, at `url`."""
    from ethhook.config import get_settings
    from ethhook.db import dispose_engine

    os.environ["ETHHOOK_DATABASE_URL"] = url
    get_settings.cache_clear()
    dispose_engine()


def history_plan() -> Plan:
    """The history endpoints (made once: the ones already there are found by their URLs)."""
    from sqlalchemy import select

    from ethhook.config import get_settings
    from ethhook.db import session_scope
    from ethhook.db.models import Endpoint
    from tests.support.endpoints import add_endpoint

    urls = [f"http://127.0.0.1:9/history/{i}" for i in range(HISTORY_ENDPOINTS)] + [FAILING_URL]
    with session_scope() as session:
        found = {url: id_ for url, id_ in session.execute(select(Endpoint.url, Endpoint.id))}
    ids = [
        found.get(url) or add_endpoint(url, contracts=[ADDRESS], events=[TRANSFER])[0]
        for url in urls
    ]
    if any(i < max(ids) for url, i in found.items() if url not in urls):
        raise SystemExit("the history endpoints must be the database's first ones: seed a new one")
    return Plan(ids[:-1], ids[-1], FAILING_PER_DAY, get_settings().retry_schedule_s)


def seed(days: int, per_day: int) -> dict[str, Any]:
    from sqlalchemy import text

    from ethhook.db import get_engine
    from ethhook.db.base import utcnow

    with get_engine().connect() as conn:
        if conn.scalar(text("SELECT EXISTS (SELECT 1 FROM events)")):
            raise SystemExit("the database already has events: seed an empty one")
    plan = history_plan()
    c.log(f"seeding {days} days × {per_day:,} rows a day, and today's so far")
    out = seed_history(utcnow(), days, per_day, plan, c.log)
    c.log(f"seeded {out['rows_per_table']:,} rows a table in {out['seed_s']:.0f} s")
    check_event_ids()
    return out


def check_event_ids(sample: int = 100) -> None:
    """The newest seeded events' ids are the ones the listener gives them (types.event_id_for)."""
    from sqlalchemy import text

    from ethhook.db import get_engine
    from ethhook.types import event_id_for

    with get_engine().connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, chain_id, block_hash, log_index FROM events"
                " WHERE event_at > now() - interval '1 day' ORDER BY event_at DESC LIMIT :n"
            ),
            {"n": sample},
        ).all()
    wrong = [r.id for r in rows if r.id != event_id_for(r.chain_id, r.block_hash, r.log_index)]
    if not rows or wrong:
        raise SystemExit(f"seeded event ids are not the listener's: {wrong[:3]} of {len(rows)}")
    c.log(f"event ids as the listener makes them: {len(rows)} of {len(rows)} checked")


def seed_only(args: argparse.Namespace) -> None:
    from ethhook.db import get_engine
    from ethhook.db.schema import check_schema
    from ethhook.exceptions import SchemaError

    if not CALLER_DATABASE_URL:
        raise SystemExit("--seed-only seeds the database at ETHHOOK_DATABASE_URL: set it")
    use_database(CALLER_DATABASE_URL)
    try:
        check_schema(get_engine(), CALLER_DATABASE_URL)
        seed(args.days, args.per_day)
    except SchemaError as exc:
        raise SystemExit(str(exc)) from None
    finally:
        shutil.rmtree(c.TMP, ignore_errors=True)


def create_database(name: str) -> str:
    """A new database on the bench's server, migrated by `ethhook db upgrade`; its URL."""
    import subprocess

    from sqlalchemy import create_engine, text

    admin = create_engine(f"{c.PG_ADMIN_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = f"{c.PG_ADMIN_URL}/{name}"
    env = {**os.environ, "ETHHOOK_DATABASE_URL": url}
    subprocess.run([str(c.BIN / "ethhook"), "db", "upgrade"], check=True, env=env,
                   capture_output=True)  # fmt: skip
    return url


def drop_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(f"{c.PG_ADMIN_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def retire_pipelines(keep: list[int]) -> None:
    """Before a pipeline starts, the last one's rows go: its endpoints (every one after the
    history's) match nothing, its events, deliveries and attempts (block numbers far below the
    history's) and its chain's blocks and cursor are deleted. A new anvil starts again at block 0
    with the same chain id and token addresses: its blocks would replace the old run's (a reorg
    to the listener: every old event `removed`, a webhook each)."""
    from sqlalchemy import text

    from ethhook.db import get_engine

    # Their rows' times are the runs' (anvil's clock): the last day's partitions hold them all.
    since = datetime.now(UTC) - timedelta(days=1)
    bounds = {"last": max(keep), "block": PIPELINE_BLOCKS, "since": since}
    with get_engine().begin() as conn:
        for sql in (
            "DELETE FROM delivery_attempts a USING deliveries d"
            " WHERE d.endpoint_id > :last AND d.event_at >= :since"
            " AND a.delivery_id = d.id AND a.event_at = d.event_at AND a.event_at >= :since",
            "DELETE FROM deliveries WHERE endpoint_id > :last AND event_at >= :since",
            "DELETE FROM events WHERE chain_id = 1 AND block_number < :block"
            " AND event_at >= :since",
            "DELETE FROM endpoint_topic_keys WHERE endpoint_id > :last",
            "DELETE FROM endpoint_filters WHERE endpoint_id > :last",
            "DELETE FROM chain_cursors",
            "DELETE FROM chain_blocks",
            "DELETE FROM chain_tags",
        ):
            conn.execute(text(sql), bounds)


def burst_on(svc: c.Services, url: str, keep: list[int], events: int) -> dict[str, Any]:
    """One burst on a pipeline started for the database at `url`; stopped afterwards."""
    from bench.pipeline import Pipeline
    from bench.pipeline_bench import burst, ethhook_cpu_ms
    from bench.volume_queries import activity_delta, table_activity
    from ethhook.db import get_engine

    use_database(url)
    retire_pipelines(keep)
    svc.flush_redis()
    p = Pipeline(svc)
    try:
        before = table_activity(get_engine())
        out = burst(p, p.receiver.url("/base"), 1, events)
    except BaseException:
        p.diagnose()
        raise
    finally:
        p.close()
    time.sleep(0.5)  # a backend's counters reach pg_stat when it ends (or idles for 10 s)
    activity = activity_delta(before, table_activity(get_engine()))
    row = out["runs"][0]
    lost = events - row["distinct"]
    if lost or row["bad_signatures"]:
        raise RuntimeError(f"burst: {lost} webhooks missing, {row['bad_signatures']} bad")
    return {
        **{k: row[k] for k in ("webhooks_per_s", "p50_ms", "p95_ms", "cpu_ms_per_webhook")},
        "ethhook_cpu_ms": ethhook_cpu_ms(row),
        "requests_loop": out["requests_loop_runs"][0],
        "requests_loop_cpu_ms": out["requests_loop_cpu_ms_runs"][0],
        "table_activity": activity,
    }


def bursts(svc: c.Services, urls: dict[str, str], keep: list[int], args: Any) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
    for r in range(args.runs):
        order = ["empty", "history"] if r % 2 == 0 else ["history", "empty"]
        for name in order:
            row = burst_on(svc, urls[name], keep, args.events)
            runs[name].append(row)
            c.log(
                f"burst run {r + 1}, {name}: {row['webhooks_per_s']:,.0f} webhooks/s, "
                f"{row['ethhook_cpu_ms']:.3f} ms CPU per webhook (requests loop "
                f"{row['requests_loop']:,.0f}/s, {row['requests_loop_cpu_ms']:.3f} ms)"
            )
    return runs


def drop_oldest_day(url: str) -> dict[str, Any]:
    """run_retention with the clock just past the oldest partitions' end: seconds, what went."""
    from sqlalchemy import text

    from ethhook.config import get_settings
    from ethhook.db import get_engine
    from ethhook.db.partitions import list_partitions
    from ethhook.maintenance.retention import run_retention

    use_database(url)
    engine, days = get_engine(), get_settings().retention_days
    oldest_end = min(p.span.end for p in list_partitions(engine) if p.span.end is not None)
    now = oldest_end + timedelta(days=days, seconds=1)
    began = time.perf_counter()
    done = run_retention(engine, now, days)
    seconds = time.perf_counter() - began
    with engine.connect() as conn:
        size = conn.scalar(text("SELECT pg_database_size(current_database())"))
    return {
        "seconds": seconds,
        "database_bytes_after": int(size),
        "dropped": sorted(p.name for p in done.dropped),
        "rows_dropped_estimate": sum(p.rows_estimate for p in done.dropped),
        "held": [f"{h.name}: {h.reason}" for h in done.held],
    }


def measure(svc: c.Services, args: argparse.Namespace, started: datetime) -> dict[str, Any]:
    from bench.volume_queries import disk, measure_all
    from ethhook.db import get_engine
    from ethhook.db.base import utcnow

    out: dict[str, Any] = {"started": f"{started:%Y-%m-%d %H:%M} UTC"}
    urls = {"empty": os.environ["ETHHOOK_DATABASE_URL"]}
    urls["history"] = args.history_url or create_database(f"{c.BENCH_DB}_history")
    try:
        use_database(urls["empty"])
        history_plan()
        use_database(urls["history"])
        plan = history_plan()
        if not args.history_url:
            out["seed"] = seed(args.days, args.per_day)
        keep = [*plan.endpoints, plan.failing]
        out["bursts"] = bursts(svc, urls, keep, args)
        out["queries"], out["disk_before"] = {}, {}
        for name, url in urls.items():
            use_database(url)
            out["queries"][name] = measure_all(get_engine(), plan.endpoints[0], utcnow())
            out["disk_before"][name] = disk(get_engine())
            c.log(f"queries and disk measured on the {name} database")
        out["retention"] = {
            "empty": [drop_oldest_day(urls["empty"])],
            "history": [drop_oldest_day(urls["history"]) for _ in range(args.runs)],
        }
        out["disk_after"] = {}
        for name, url in urls.items():
            use_database(url)
            out["disk_after"][name] = disk(get_engine())
    finally:
        use_database(urls["empty"])
        if args.keep:
            c.log(f"history database kept: --history-url {urls['history']}")
        elif not args.history_url:
            drop_database(urls["history"])
    out["finished"] = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=10)
    p.add_argument("--per-day", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--events", type=int, default=5000, help="burst size")
    p.add_argument("--quick", action="store_true", help="3 days × 20,000, 1 run of 1,000 events")
    p.add_argument("--seed-only", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the history database (its URL)")
    p.add_argument("--history-url", help="a database seeded with --seed-only (kept)")
    p.add_argument("--json", nargs="?", const=str(c.ROOT / "bench" / "out" / "volume.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.days, args.per_day, args.runs, args.events = 3, 20_000, 1, 1000
    if args.days < 1 or args.per_day < 1 or args.runs < 1 or args.events < 100:
        p.error("--days, --per-day and --runs must be at least 1, --events at least 100")
    if args.seed_only:
        seed_only(args)
        return
    c.on_sigterm_exit()
    started = datetime.now(UTC)
    with c.services() as svc:
        out = measure(svc, args, started)
    out["args"] = {k: v for k, v in vars(args).items() if k != "history_url"}
    if args.json:
        c.write_json(Path(args.json), out)
    print(report(out))


if __name__ == "__main__":
    sys.exit(main())
