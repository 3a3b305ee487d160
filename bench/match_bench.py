"""Matching: events/s through the match stage, beside one endpoint query per event.

The match stage is what `ethhook.match.match_events` does for a batch the listener stored: claim
the events, find the endpoints, insert the deliveries, commit, enqueue the deliver tasks (to a real
Redis broker). The
baseline does the same work but asks PostgreSQL once per event (the same query, one event at a
time) — the design behind the original system's crisis. Runs alternate between the two.

Endpoint i (1-based) watches chain 1, contract (i-1) mod 10,000 and topic0 number (i-1) div 10,000,
so every event, drawn uniformly over the N endpoints' filters, matches exactly one endpoint.

Usage: python -m bench.match_bench [--sizes 1000,10000,100000,1000000] [--runs 3] [--batches 30]
       python -m bench.match_bench --where [--sizes 1000000] [--check-endpoints 10000]
(--where: the --where benchmarks of bench/match_where.py instead.)
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import bench.common as c

CONTRACTS = 10_000
PHASES = ("claim_events", "find_matches", "create_deliveries", "commit", "enqueue")


def contract(n: int) -> str:
    return "0x" + f"{n:040x}"


def topic(n: int) -> str:
    return "0x" + f"{n + 1:064x}"


def populate(upto: int, have: int) -> None:
    """Add endpoints have+1..upto (with one filter row each) in bulk SQL, then ANALYZE."""
    from sqlalchemy import text

    from ethhook.db import get_engine

    if upto <= have:
        return
    started = time.perf_counter()
    with get_engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO endpoints (id, application_id, url, secret, event_signatures,"
                " confirmations, active, created_at, updated_at)"
                " SELECT g, (SELECT id FROM applications WHERE name = 'default'),"
                " 'http://127.0.0.1:9/e' || g,"
                " 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '[]'::json, 0, true, now(), now()"
                " FROM generate_series(:a, :b) g"
            ),
            {"a": have + 1, "b": upto},
        )
        conn.execute(
            text(
                "INSERT INTO endpoint_filters (endpoint_id, chain_id, address, topic0)"
                " SELECT g, 1, '0x' || lpad(to_hex((g - 1) % :c), 40, '0'),"
                " '0x' || lpad(to_hex((g - 1) / :c + 1), 64, '0')"
                " FROM generate_series(:a, :b) g"
            ),
            {"a": have + 1, "b": upto, "c": CONTRACTS},
        )
        conn.execute(text("SELECT setval('endpoints_id_seq', :b)"), {"b": upto})
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE endpoints"))
        conn.execute(text("ANALYZE endpoint_filters"))
    c.log(
        f"match: {upto:,} endpoints ready (+{upto - have:,} in {time.perf_counter() - started:.1f}s)"
    )


_block = [10_000_000]


def make_batches(endpoints: int, batches: int, size: int, rng: random.Random) -> list[list]:
    from tests.factories import transfer

    out = []
    for _ in range(batches):
        _block[0] += 1
        events = []
        for log_index in range(size):
            i = rng.randrange(endpoints)
            events.append(
                transfer(
                    contract=contract(i % CONTRACTS),
                    topic0=topic(i // CONTRACTS),
                    block=_block[0],
                    log_index=log_index,
                    value=i,
                )
            )
        out.append(events)
    return out


def per_event_matches(session, events: Sequence) -> dict:  # type: ignore[no-untyped-def]
    """The baseline: the same endpoint query, issued once per event."""
    from ethhook.match.service import find_matches

    found: dict = {}
    for event in events:
        found.update(find_matches(session, [event]))
    return found


def one_message(groups: Sequence) -> int:
    """What-if (not how EthHook works today): one deliver message per batch carrying every group.

    Published to a queue nobody consumes, to price the enqueue side of coarser messages.
    """
    from ethhook.celery_app import app

    if groups:
        with app.producer_or_acquire() as producer:
            app.send_task(
                "ethhook.deliver.deliver_groups_whatif",
                kwargs={
                    "groups": [
                        {
                            "endpoint_id": g.endpoint_id,
                            "delivery_ids": g.delivery_ids,
                            "token": g.token,
                        }
                        for g in groups
                    ]
                },
                queue="bench_whatif",
                producer=producer,
            )
    return 1 if groups else 0


def match_stage(finder: Callable | None, enqueue: Callable | None = None) -> Callable[[list], int]:
    """One batch, stored as the listener stores it (not timed), through the matcher's claim →
    find → insert deliveries → commit → enqueue; returns deliveries."""
    from ethhook.db import session_scope
    from ethhook.db.models import utcnow
    from ethhook.match.service import create_deliveries, find_matches
    from ethhook.workqueue import claim_unmatched, enqueue_groups, store_events

    find = finder or find_matches
    publish = enqueue or enqueue_groups

    def run(events: list) -> int:
        now: datetime = utcnow()
        with session_scope() as session:
            (batch,) = store_events(session, events, now)
        t0 = time.perf_counter()
        with session_scope() as session:
            claimed = claim_unmatched(session, batch.event_ids, batch.token, now)
            assert len(claimed) == len(events)
            t1 = time.perf_counter()
            found = find(session, claimed)
            t2 = time.perf_counter()
            groups = create_deliveries(session, claimed, found, now)
            t3 = time.perf_counter()
        t4 = time.perf_counter()
        publish(groups)
        t5 = time.perf_counter()
        for name, dt in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            phases[name] = phases.get(name, 0.0) + dt
        phases["messages"] = phases.get("messages", 0.0) + len(groups)
        return sum(len(g.delivery_ids) for g in groups)

    phases: dict[str, float] = {}
    run.phases = phases  # type: ignore[attr-defined]
    return run


def measure(stage: Callable[[list], int], batches: list[list]) -> tuple[float, int]:
    started = time.perf_counter()
    deliveries = sum(stage(b) for b in batches)
    elapsed = time.perf_counter() - started
    return sum(len(b) for b in batches) / elapsed, deliveries


def run(sizes: list[int], runs: int, batches: int, batch_size: int, svc: c.Services) -> list[dict]:
    rng = random.Random(6)
    batched = match_stage(None)
    per_event = match_stage(per_event_matches)
    whatif = match_stage(None, one_message)
    have = 0
    results = []
    for n in sizes:
        populate(n, have)
        have = max(have, n)
        # Warm-up (caches, plans, connections), not counted.
        measure(batched, make_batches(n, 3, batch_size, rng))
        measure(per_event, make_batches(n, 3, batch_size, rng))
        ours, base, coarse = [], [], []
        batched.phases.clear()  # type: ignore[attr-defined]
        per_event.phases.clear()  # type: ignore[attr-defined]
        for r in range(runs):
            rate, deliveries = measure(batched, make_batches(n, batches, batch_size, rng))
            ours.append(rate)
            brate, _ = measure(per_event, make_batches(n, batches, batch_size, rng))
            base.append(brate)
            wrate, _ = measure(whatif, make_batches(n, batches, batch_size, rng))
            coarse.append(wrate)
            svc.flush_redis()
            c.log(
                f"match: n={n:,} run {r + 1}: batched {rate:,.0f} ev/s "
                f"({deliveries / (batches * batch_size):.2f} deliveries/event), "
                f"per-event {brate:,.0f} ev/s; what-if one message per batch {wrate:,.0f} ev/s"
            )
        row = {
            "endpoints": n,
            "batched_eps": ours,
            "per_event_eps": base,
            "batched_median": c.median(ours),
            "per_event_median": c.median(base),
            "ratio": c.median(ours) / c.median(base),
            "whatif_one_message_eps": coarse,
            "whatif_one_message_median": c.median(coarse),
            "events_per_run": batches * batch_size,
            # Seconds per batch in each phase of the batched stage, averaged over its runs.
            "batched_phase_ms": {
                k: round(v / (runs * batches) * 1000, 2)
                for k, v in batched.phases.items()  # type: ignore[attr-defined]
                if k != "messages"
            },
            "per_event_phase_ms": {
                k: round(v / (runs * batches) * 1000, 2)
                for k, v in per_event.phases.items()  # type: ignore[attr-defined]
                if k != "messages"
            },
            "messages_per_batch": batched.phases["messages"] / (runs * batches),  # type: ignore[attr-defined]
        }
        c.log(
            f"match: n={n:,} batched phases (ms/batch): {row['batched_phase_ms']}, "
            f"{row['messages_per_batch']:.0f} deliver messages/batch"
        )
        results.append(row)
    return results


def report(results: list[dict]) -> str:
    phases = ["", "Phases of the batched stage, ms per batch of 100 (mean over its runs):", ""]
    phases += [
        f"* {r['endpoints']:,} endpoints: "
        + ", ".join(f"{k} {v:.1f}" for k, v in r["batched_phase_ms"].items())
        + f" ({r['messages_per_batch']:.0f} deliver messages per batch)"
        for r in results
    ]
    lines = [
        "| endpoints | batched query, events/s (median) | per-event query, events/s (median) "
        "| ratio | runs (batched) | what-if: one deliver message per batch, events/s "
        "| endpoint lookup, batched, ms/100 events | per-event, ms/100 events | lookup ratio |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['endpoints']:,} | {r['batched_median']:,.0f} | {r['per_event_median']:,.0f} "
            f"| {r['ratio']:.1f}× | {', '.join(f'{x:,.0f}' for x in r['batched_eps'])} "
            f"| {r['whatif_one_message_median']:,.0f} "
            f"| {r['batched_phase_ms']['find_matches']:.1f} "
            f"| {r['per_event_phase_ms']['find_matches']:.1f} "
            f"| {r['per_event_phase_ms']['find_matches'] / r['batched_phase_ms']['find_matches']:.1f}× |"
        )
    return "\n".join(lines + phases)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000,100000,1000000")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--where", action="store_true", help="the --where benchmarks instead")
    p.add_argument("--check-endpoints", type=int, default=10_000, help="with --where")
    args = p.parse_args(argv)
    c.on_sigterm_exit()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.where:
        from bench.match_where import main as where_main

        where_main(sizes[-1], args.check_endpoints, args.runs, args.batches, args.batch_size)
        return
    with c.services() as svc:
        results = run(sizes, args.runs, args.batches, args.batch_size, svc)
    c.write_json(c.ROOT / "bench" / "out" / "match.json", results)
    print(f"\n## Matching (match stage in one process, batches of {args.batch_size})\n")
    print(report(results))


if __name__ == "__main__":
    main()
