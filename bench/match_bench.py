"""Matching: events/s through the match stage, beside one endpoint query per event.

The match stage is what `ethhook.match.match_events` does for a batch the listener stored
(stored before the clock starts, as the listener does in production): `match_stored` (claim the
events, find the endpoints, insert the deliveries), commit, enqueue the deliver tasks (to a real
Redis broker). The baseline does the same work but asks PostgreSQL once per event (the same query,
one event at a time) — the design behind the original system's crisis. Runs alternate between the
two.

Endpoint i (1-based) watches chain 1, contract (i-1) mod 10,000 and topic0 number (i-1) div 10,000,
so every event matches exactly one endpoint. A batch with fan-out K draws K distinct endpoints at
random and gives each 100/K of its events: K = 10 is the common case (≤ 10 deliver messages per
batch), K = 100 the worst (every event to its own endpoint, 100 deliver messages).

Usage: python -m bench.match_bench [--sizes 1000000] [--fanouts 10,100] [--runs 3] [--batches 30]
       python -m bench.match_bench --where [--sizes 1000000] [--check-endpoints 10000]
(--where: the --where benchmarks of bench/match_where.py instead; --whatif adds the one deliver
message per batch what-if.)
"""

from __future__ import annotations

import argparse
import contextlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

import bench.common as c

CONTRACTS = 10_000
# The steps of match.service.match_stored timed apart (what is left of it is "other").
SERVICE_PHASES = ("claim_unmatched", "find_matches", "create_deliveries")


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


def make_batches(
    endpoints: int, batches: int, size: int, rng: random.Random, fanout: int
) -> list[list]:
    """Batches of `size` events, each batch going to `fanout` distinct random endpoints."""
    from tests.support.factories import transfer

    out = []
    for _ in range(batches):
        _block[0] += 1
        targets = rng.sample(range(endpoints), min(fanout, endpoints))
        events = []
        for log_index in range(size):
            i = targets[log_index % len(targets)]
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


def per_event_matches() -> Callable:
    """The baseline: the same endpoint query, issued once per event."""
    from ethhook.match.service import find_matches  # before timed_service replaces it

    def find(session, events: Sequence) -> dict:  # type: ignore[no-untyped-def]  # noqa: ANN001
        found: dict = {}
        for event in events:
            found.update(find_matches(session, [event]))
        return found

    return find


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


class _Timed:
    """Wraps a function of match.service and adds its time to `phases[name]`."""

    def __init__(self, name: str, fn: Callable, phases: dict[str, float]) -> None:
        self.name, self.fn, self.phases = name, fn, phases

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]  # noqa: ANN002, ANN003
        started = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.phases[self.name] = self.phases.get(self.name, 0.0) + time.perf_counter() - started


@contextlib.contextmanager
def timed_service(phases: dict[str, float], finder: Callable | None) -> Iterator[None]:
    """match.service's steps timed (and its finder replaced by `finder`) while inside."""
    import ethhook.match.service as service

    saved = {name: getattr(service, name) for name in SERVICE_PHASES}
    try:
        for name, fn in saved.items():
            if name == "find_matches" and finder is not None:
                fn = finder
            setattr(service, name, _Timed(name, fn, phases))
        yield
    finally:
        for name, fn in saved.items():
            setattr(service, name, fn)


def match_stage(finder: Callable | None, enqueue: Callable | None = None) -> Callable[[list], int]:
    """One batch, stored as the listener stores it (not timed), then what the matcher task does:
    `match_stored` (its steps timed apart) → commit → enqueue; returns deliveries."""
    from ethhook.db import session_scope
    from ethhook.db.models import utcnow
    from ethhook.match.service import match_stored
    from ethhook.workqueue import enqueue_groups, store_events

    publish = enqueue or enqueue_groups

    def run(events: list) -> int:
        now: datetime = utcnow()
        with session_scope() as session:
            (batch,) = store_events(session, events, now)
        with timed_service(phases, finder):
            t0 = time.perf_counter()
            with session_scope() as session:
                claimed, groups = match_stored(session, batch.event_ids, batch.token, now)
                assert claimed == len(events)
                t1 = time.perf_counter()
            t2 = time.perf_counter()
            publish(groups)
            t3 = time.perf_counter()
        for name, dt in (("match_stored", t1 - t0), ("commit", t2 - t1), ("enqueue", t3 - t2)):
            phases[name] = phases.get(name, 0.0) + dt
        phases["total"] = phases.get("total", 0.0) + t3 - t0
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


def _phase_ms(phases: dict[str, float], batches: int) -> dict[str, float]:
    """Mean ms per batch of each phase; "other" is match_stored's time outside its timed steps."""
    ms = {k: v / batches * 1000 for k, v in phases.items() if k != "messages"}
    ms["other"] = ms.pop("match_stored", 0.0) - sum(ms.get(k, 0.0) for k in SERVICE_PHASES)
    return {k: round(v, 2) for k, v in ms.items()}


def run_row(n: int, fanout: int, args: argparse.Namespace, svc: c.Services) -> dict:
    """One row: the batched stage and its per-event baseline (and the what-if), alternating."""
    rng = random.Random(6 + fanout)
    variants = {"batched": match_stage(None), "per_event": match_stage(per_event_matches())}
    if args.whatif:
        variants["whatif"] = match_stage(None, one_message)
    for stage in variants.values():  # warm-up (caches, plans, connections), not counted
        measure(stage, make_batches(n, 3, args.batch_size, rng, fanout))
        stage.phases.clear()  # type: ignore[attr-defined]
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.runs):
        for name, stage in variants.items():
            batches = make_batches(n, args.batches, args.batch_size, rng, fanout)
            rate, deliveries = measure(stage, batches)
            rates[name].append(rate)
        svc.flush_redis()
        c.log(
            f"match: n={n:,} fanout={fanout} run {r + 1}: "
            + ", ".join(f"{k} {v[-1]:,.0f} ev/s" for k, v in rates.items())
        )
    count = args.runs * args.batches
    row = {
        "endpoints": n,
        "fanout": fanout,
        "events_per_run": args.batches * args.batch_size,
        "messages_per_batch": variants["batched"].phases["messages"] / count,  # type: ignore[attr-defined]
        **{f"{k}_eps": v for k, v in rates.items()},
        **{f"{k}_median": c.median(v) for k, v in rates.items()},
        # ms per batch in each phase, averaged over the variant's runs.
        **{f"{k}_phase_ms": _phase_ms(s.phases, count) for k, s in variants.items()},  # type: ignore[attr-defined]
    }
    row["ratio"] = row["batched_median"] / row["per_event_median"]
    c.log(f"match: n={n:,} fanout={fanout} batched phases (ms/batch): {row['batched_phase_ms']}")
    return row


def run(
    sizes: list[int], fanouts: list[int], args: argparse.Namespace, svc: c.Services
) -> list[dict]:
    have, results = 0, []
    for n in sizes:
        populate(n, have)
        have = max(have, n)
        results += [run_row(n, fanout, args, svc) for fanout in fanouts]
    return results


def report(results: list[dict]) -> str:
    lines = [
        "| endpoints | fan-out | batched, events/s (median) | runs | per-event query, events/s "
        "(median) | ratio | deliver messages/batch | what-if: one message per batch, events/s |",
        "|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        whatif = r.get("whatif_median")
        lines.append(
            f"| {r['endpoints']:,} | {r['fanout']} | {r['batched_median']:,.0f} "
            f"| {', '.join(f'{x:,.0f}' for x in r['batched_eps'])} "
            f"| {r['per_event_median']:,.0f} | {r['ratio']:.1f}× | {r['messages_per_batch']:.0f} "
            f"| {'—' if whatif is None else f'{whatif:,.0f}'} |"
        )
    lines += ["", "Phases, ms per batch (mean over the variant's runs):", ""]
    for r in results:
        for variant in ("batched", "per_event"):
            phases = r[f"{variant}_phase_ms"]
            lines.append(
                f"* {r['endpoints']:,} endpoints, fan-out {r['fanout']}, {variant}: "
                + ", ".join(f"{k} {v:.1f}" for k, v in phases.items())
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000000")
    p.add_argument("--fanouts", default="10,100", help="endpoints per batch, one row each")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--whatif", action="store_true", help="also one deliver message per batch")
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
        results = run(sizes, [int(f) for f in args.fanouts.split(",")], args, svc)
    c.write_json(c.ROOT / "bench" / "out" / "match.json", results)
    print(f"\n## Matching (match stage in one process, batches of {args.batch_size})\n")
    print(report(results))


if __name__ == "__main__":
    main()
