"""Matching with --where conditions (`python -m bench.match_bench --where`).

1. Topic index: N endpoints (1,000,000 by default), endpoint i `to == <address i>` on one token's
   Transfers, stored as registration stores them (a keyed filter row and a topic key each).
   Batches of 100 Transfers, half to random watched addresses, half to unwatched ones, through the
   match stage (claim → find → insert deliveries → commit → enqueue), with the SELECTs of each
   batch counted. Baseline, same run, same rows: the stage with the topic key index dropped (the
   planner then reads the whole key table per batch). Runs alternate between the two.
2. Check after the query: M endpoints (10,000 by default) with `value >= X_i` on the same
   Transfers are all rows the query returns for every event; the cost per event of pairing them
   with their conditions (decode once, compare exactly), beside the same rows without conditions.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import bench.common as c
from bench.match_bench import match_stage

TOKEN = "0x" + "7e" * 20
KEY_INDEX = "ix_endpoint_topic_keys_value"
_block = [20_000_000]


def transfer_batches(n: int, batches: int, size: int, rng: random.Random) -> list[list[Any]]:
    """Batches of Transfers on TOKEN: even ones to a random watched address, odd ones not."""
    from tests.support.endpoints import watched_address
    from tests.support.factories import address, transfer, word_address

    out = []
    for _ in range(batches):
        _block[0] += 1
        events = []
        for i in range(size):
            to = watched_address(rng.randrange(1, n + 1)) if i % 2 == 0 else address(rng.random())
            log = transfer(
                contract=TOKEN, block=_block[0], log_index=i, value=rng.randrange(10**20)
            )
            events.append(replace(log, topics=[*log.topics[:2], word_address(to)]))
        out.append(events)
    return out


class SelectCounter:
    def __init__(self) -> None:
        self.selects = 0

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]  # noqa: ANN001
        if statement.lstrip().upper().startswith(("SELECT", "(SELECT")):
            self.selects += 1


def counted_finder(counter: SelectCounter) -> Callable[..., Any]:
    """find_matches, with the SELECTs it sends counted."""
    from sqlalchemy import event

    from ethhook.db import get_engine
    from ethhook.match.service import find_matches

    def find(session: Any, events: Sequence[Any]) -> Any:
        engine = get_engine()
        event.listen(engine, "before_cursor_execute", counter)
        try:
            return find_matches(session, events)
        finally:
            event.remove(engine, "before_cursor_execute", counter)

    return find


def set_key_index(present: bool) -> float:
    """Drop or (re)create the topic key index; returns the seconds it took."""
    from sqlalchemy import text

    from ethhook.db import get_engine

    started = time.perf_counter()
    with get_engine().begin() as conn:
        if present:
            conn.execute(text(f"CREATE INDEX {KEY_INDEX} ON endpoint_topic_keys (value)"))
        else:
            conn.execute(text(f"DROP INDEX {KEY_INDEX}"))
    return time.perf_counter() - started


def topic_index(n: int, runs: int, batches: int, size: int, svc: c.Services) -> dict[str, Any]:
    from tests.support.endpoints import seed_keyed_endpoints
    from tests.support.factories import TRANSFER

    started = time.perf_counter()
    seed_keyed_endpoints(1, n, TOKEN, TRANSFER)
    c.log(f"where: {n:,} keyed endpoints ready in {time.perf_counter() - started:.0f}s")
    rng = random.Random(13)
    counter = SelectCounter()
    stage = match_stage(counted_finder(counter))
    ours: list[float] = []
    base: list[float] = []
    per_batch: list[float] = []
    deliveries_per_event = 0.0
    phase_ms: dict[str, float] = {}  # seconds, summed over the topic-index runs
    base_find_ms: list[float] = []  # find_matches per batch without the index, per run
    for warmup in transfer_batches(n, 3, size, rng):  # caches, plans, connections
        stage(warmup)
    stage.phases.clear()  # type: ignore[attr-defined]
    for r in range(runs):
        counter.selects = 0
        ours_phases = dict(stage.phases)  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        delivered = sum(stage(b) for b in transfer_batches(n, batches, size, rng))
        ours.append(batches * size / (time.perf_counter() - t0))
        per_batch.append(counter.selects / batches)
        deliveries_per_event = delivered / (batches * size)
        for name, total in stage.phases.items():  # type: ignore[attr-defined]
            phase_ms[name] = phase_ms.get(name, 0.0) + total - ours_phases.get(name, 0.0)
        set_key_index(False)
        base_batches = max(3, batches // 5)
        before = stage.phases.get("find_matches", 0.0)  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        for b in transfer_batches(n, base_batches, size, rng):
            stage(b)
        base.append(base_batches * size / (time.perf_counter() - t0))
        base_find_ms.append((stage.phases["find_matches"] - before) / base_batches * 1000)  # type: ignore[attr-defined]
        rebuild = set_key_index(True)
        svc.flush_redis()
        c.log(
            f"where: run {r + 1}: topic index {ours[-1]:,.0f} ev/s, {per_batch[-1]:.1f} SELECT/batch, "
            f"{deliveries_per_event:.2f} deliveries/event; without it {base[-1]:,.0f} ev/s "
            f"({base_batches} batches; index rebuilt in {rebuild:.1f}s)"
        )
    return {
        "endpoints": n,
        "topic_index_eps": ours,
        "no_index_eps": base,
        "topic_index_median": c.median(ours),
        "no_index_median": c.median(base),
        "selects_per_batch": per_batch,
        "deliveries_per_event": deliveries_per_event,
        "no_index_find_ms": base_find_ms,
        # ms per batch in each phase of the stage with the topic index
        "phase_ms": {
            k: round(v / (runs * batches) * 1000, 2) for k, v in phase_ms.items() if k != "messages"
        },
    }


def check_cost(m: int, events: int, rounds: int) -> dict[str, Any]:
    """CPU µs per event to pair M rows with their `value >= X` conditions, and without them."""
    from ethhook.match.service import pair_with_filters
    from tests.support.factories import TRANSFER, TRANSFER_TOPIC, transfer

    rng = random.Random(7)
    thresholds = [rng.randrange(10**21) for _ in range(m)]
    with_where = [
        (i, 1, TOKEN, TRANSFER_TOPIC, 0, None, None, [f"value >= {x}"], [TRANSFER])
        for i, x in enumerate(thresholds, 1)
    ]
    without = [row[:5] for row in with_where]
    batch = [
        transfer(contract=TOKEN, block=1, log_index=i, value=rng.randrange(10**21))
        for i in range(events)
    ]
    timings: dict[str, list[float]] = {"where": [], "plain": []}
    matched = 0
    for _ in range(rounds):
        for name, rows in (("where", with_where), ("plain", without)):
            # CPU time of this process: the machine's other load does not count against it.
            t0 = time.process_time()
            found = pair_with_filters(batch, rows)
            timings[name].append((time.process_time() - t0) / events * 1e6)
            if name == "where":
                matched = sum(len(v) for v in found.values())
    where_us, plain_us = c.median(timings["where"]), c.median(timings["plain"])
    c.log(
        f"where: {m:,} `value >= X` endpoints: {where_us:,.0f} µs/event with the check, "
        f"{plain_us:,.0f} without; {matched / events:,.0f} matches/event"
    )
    return {
        "endpoints": m,
        "us_per_event_with_check": where_us,
        "us_per_event_without": plain_us,
        "check_us_per_event": where_us - plain_us,
        "check_ns_per_endpoint_row": (where_us - plain_us) / m * 1000,
        "matches_per_event": matched / events,
        "rounds": timings,
    }


def report(keyed: dict[str, Any], check: dict[str, Any], size: int) -> str:
    k, ch = keyed, check
    return "\n".join(
        [
            "| endpoints (`to == own address`) | topic index, events/s (median) | runs "
            "| SELECTs per batch | baseline without the topic index, events/s | ratio |",
            "|---:|---:|---|---:|---:|---:|",
            f"| {k['endpoints']:,} | {k['topic_index_median']:,.0f} "
            f"| {', '.join(f'{x:,.0f}' for x in k['topic_index_eps'])} "
            f"| {', '.join(f'{x:g}' for x in k['selects_per_batch'])} "
            f"| {k['no_index_median']:,.0f} "
            f"| {k['topic_index_median'] / k['no_index_median']:.1f}× |",
            "",
            f"Batches of {size}; {k['deliveries_per_event']:.2f} deliveries per event. Phases with "
            "the topic index, ms per batch: "
            + ", ".join(f"{name} {ms:.1f}" for name, ms in k["phase_ms"].items())
            + ". find_matches without it, ms per batch: "
            + ", ".join(f"{ms:.1f}" for ms in k["no_index_find_ms"])
            + ".",
            "",
            "| endpoints (`value >= X`) | pairing with the check, CPU µs/event | same rows without "
            "conditions, CPU µs/event | the check, µs/event | per endpoint row, ns | matches/event |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {ch['endpoints']:,} | {ch['us_per_event_with_check']:,.0f} "
            f"| {ch['us_per_event_without']:,.0f} | {ch['check_us_per_event']:,.0f} "
            f"| {ch['check_ns_per_endpoint_row']:,.0f} | {ch['matches_per_event']:,.0f} |",
        ]
    )


def main(n: int, m: int, runs: int, batches: int, size: int) -> None:
    with c.services() as svc:
        keyed = topic_index(n, runs, batches, size, svc)
    check = check_cost(m, events=100, rounds=runs)
    c.write_json(c.ROOT / "bench" / "out" / "match_where.json", {"keyed": keyed, "check": check})
    print(f"\n## Matching with --where (batches of {size})\n")
    print(report(keyed, check, size))
