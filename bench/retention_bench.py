"""Retention by dropping partitions, beside deleting the same day's rows.

Seeds D days (default 10) of history, R rows a day (default 1,000,000) in each of `events`,
`deliveries` (one finished delivery per event) and `delivery_attempts` (one attempt per delivery),
in one-day partitions, with generate_series (tests/support/history.py: the listener's hash event ids);
--runs - 1 days more, so every timed run drops one day out of at least D. Each run moves the clock
one day on and times `run_retention` (the beat job's and `ethhook db retention`'s code) dropping
the oldest day. Then it checks:
* the dropped day's partitions are gone, and every newer day still has all its rows;
* a day past retention holding one pending delivery is kept, with all its rows.

The baseline, in the same run: deleting rows, the way retention worked before partitions (and
still works on SQLite). Before the timed runs, each of --runs small days of B rows (default
100,000 per table) is deleted with one DELETE per table over its time range (the cheapest row
delete there is: no batching, no per-row lookups), and the time is scaled to R rows.

Usage: python -m bench.retention_bench [--days 10] [--rows 1000000] [--runs 3]
       [--baseline-rows 100000] [--quick]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import bench.common as c
from tests.support.history import Plan, seed_span

DAY = timedelta(days=1)
RETENTION_DAYS = 30.0
FIRST_DAY = datetime(2026, 1, 1, tzinfo=UTC)
HISTORY = ("delivery_attempts", "deliveries", "events")
# Every delivery to one endpoint (made only by the hold check), every attempt answered 200.
PLAN = Plan(endpoints=[1])


def seed_day(start: datetime, rows: int) -> None:
    """`rows` events, deliveries and attempts in the day from `start` (tests/support/history.py)."""
    seed_span(start, start + DAY, rows, PLAN, now=start + DAY)


def rows_of_day(start: datetime) -> dict[str, int]:
    from sqlalchemy import text

    from ethhook.db import get_engine

    with get_engine().connect() as conn:
        return {
            table: conn.scalar(
                text(f"SELECT count(*) FROM {table} WHERE event_at >= :start AND event_at < :end"),
                {"start": start, "end": start + DAY},
            )
            for table in HISTORY
        }


def delete_rows(start: datetime) -> float:
    """The baseline: the day's rows deleted, one DELETE per table (attempts first); seconds."""
    from sqlalchemy import text

    from ethhook.db import get_engine

    began = time.perf_counter()
    with get_engine().begin() as conn:
        for table in HISTORY:
            conn.execute(
                text(f"DELETE FROM {table} WHERE event_at >= :start AND event_at < :end"),
                {"start": start, "end": start + DAY},
            )
    return time.perf_counter() - began


def retention_at(now: datetime) -> tuple[float, Any]:
    from ethhook.db import get_engine
    from ethhook.maintenance.retention import run_retention

    began = time.perf_counter()
    report = run_retention(get_engine(), now, RETENTION_DAYS)
    return time.perf_counter() - began, report


def clock_dropping(day: datetime) -> datetime:
    """The time at which `day` (and every day before it) has just passed retention."""
    return day + DAY + timedelta(days=RETENTION_DAYS, seconds=1)


def hold_check(day: datetime) -> dict[str, Any]:
    """One pending delivery in `day`, past retention: its day is kept, every row of it."""
    from sqlalchemy import text

    from ethhook.db import get_engine

    with get_engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO endpoints (id, application_id, url, secret, event_signatures,"
                " confirmations, active, created_at, updated_at)"
                " SELECT 1, id, 'http://127.0.0.1:9/', 'whsec_x', '[]', 0, true, now(), now()"
                " FROM applications WHERE name = 'default' ON CONFLICT (id) DO NOTHING"
            )
        )
        conn.execute(
            text(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = now()"
                " WHERE id = (SELECT id FROM deliveries WHERE event_at >= :start"
                " AND event_at < :end LIMIT 1)"
            ),
            {"start": day, "end": day + DAY},
        )
    before = rows_of_day(day)
    seconds, report = retention_at(clock_dropping(day))
    after = rows_of_day(day)
    held = sorted({h.reason for h in report.held})
    return {"seconds": seconds, "kept": before == after, "rows": after, "reasons": held}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    days = [FIRST_DAY + i * DAY for i in range(args.days + args.runs - 1)]
    small = [FIRST_DAY - (args.runs - i) * DAY for i in range(args.runs)]
    began = time.perf_counter()
    for day in small:
        seed_day(day, args.baseline_rows)
    for day in days:
        seed_day(day, args.rows)
        c.log(f"seeded {day:%Y-%m-%d}: {args.rows:,} rows in each history table")
    seed_s = time.perf_counter() - began
    from sqlalchemy import text

    from ethhook.db import get_engine

    with get_engine().begin() as conn:
        conn.execute(text("ANALYZE events; ANALYZE deliveries; ANALYZE delivery_attempts"))

    baseline = []
    for day in small:
        seconds = delete_rows(day)
        baseline.append(seconds * args.rows / args.baseline_rows)
        c.log(f"baseline: {args.baseline_rows:,} rows a table deleted in {seconds:.2f} s")
    retention_at(clock_dropping(small[-1]))  # the baseline's emptied days: not timed
    drops, dropped_ok = [], True
    for run in range(args.runs):
        day = days[run]
        seconds, report = retention_at(clock_dropping(day))
        drops.append(seconds)
        names = sorted(p.name for p in report.dropped)
        gone = rows_of_day(day) == dict.fromkeys(HISTORY, 0)
        dropped_ok &= gone and not report.held
        c.log(f"run {run + 1}: dropped {names} in {seconds:.3f} s (day empty: {gone})")
    newer = {f"{d:%Y-%m-%d}": rows_of_day(d) for d in days[args.runs :]}
    untouched = all(counts == dict.fromkeys(HISTORY, args.rows) for counts in newer.values())
    held = hold_check(days[args.runs])
    return {
        "seed_s": seed_s,
        "baseline_s_per_day": baseline,
        "drop_s": drops,
        "dropped_ok": dropped_ok,
        "newer_untouched": untouched,
        "newer_days": len(newer),
        "hold": held,
    }


def report(args: argparse.Namespace, out: dict[str, Any]) -> str:
    base, drop = c.median(out["baseline_s_per_day"]), c.median(out["drop_s"])
    rows = f"{args.rows:,}"
    hold = out["hold"]
    return "\n".join(
        [
            f"{args.days + args.runs - 1} days × {rows} rows a day in each history table"
            f" (seeded in {out['seed_s']:.0f} s); medians of {args.runs}",
            "",
            "| retention of one day | seconds | runs |",
            "|---|---|---|",
            f"| baseline: DELETE the day's rows (scaled from {args.baseline_rows:,} rows a table)"
            f" | {base:.1f} | {', '.join(f'{s:.1f}' for s in out['baseline_s_per_day'])} |",
            f"| run_retention: detach and drop the day's partitions | {drop:.3f}"
            f" | {', '.join(f'{s:.3f}' for s in out['drop_s'])} |",
            "",
            f"Ratio: {base / drop:.0f}× faster. Dropped days empty and nothing held:"
            f" {out['dropped_ok']}. The {out['newer_days']} newer days untouched:"
            f" {out['newer_untouched']}. A day past retention with one pending delivery kept"
            f" whole: {hold['kept']} ({'; '.join(hold['reasons'])}; {hold['seconds']:.3f} s).",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=10)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--baseline-rows", type=int, default=100_000)
    p.add_argument("--quick", action="store_true", help="10 days × 100,000 rows, baseline 10,000")
    args = p.parse_args(argv)
    if args.quick:
        args.rows, args.baseline_rows = 100_000, 10_000
    c.on_sigterm_exit()
    with c.services():
        out = measure(args)
    c.write_json(c.ROOT / "bench" / "out" / "retention.json", {"args": vars(args), **out})
    print(f"\n## Retention ({'quick' if args.quick else 'full'})\n")
    print(report(args, out))


if __name__ == "__main__":
    main()
