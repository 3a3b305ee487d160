"""Ordered endpoints' throughput: webhooks/s to one `--ordered` endpoint beside the same endpoint
unordered (the baseline, measured in the same run), at several receiver latencies.

Each run makes a fresh endpoint (ordered or not) on the bench receiver's `/delay/<ms>/…` path,
stores and matches its N events in-process as the matcher would (sequence 1..N, deliver tasks of
100), then enqueues the deliver tasks and times from there to the receiver's N-th webhook. One
deliver worker as workers/README.md runs it in production (gevent, 100 greenlets), beat beside it. The
receiver checks the order (`out_of_order` must stay 0 for ordered runs). An ordered endpoint sends
one webhook at a time, so its rate should be about 1 / (latency + per-webhook overhead); the
overhead is read from the 0 ms runs and the other latencies' predictions printed beside them.
Usage: python -m bench.ordered_bench [--runs 3] [--latencies 0,10,50] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import bench.common as c

# Events per run by receiver latency: enough for a few seconds of ordered sending each.
EVENTS = {0: 1000, 10: 300, 50: 100}


def one_run(receiver: c.ReceiverProcess, n: int, latency_ms: int, ordered: bool) -> dict[str, Any]:
    from ethhook.config import get_settings
    from ethhook.db import session_scope
    from ethhook.db.models import utcnow
    from ethhook.service.endpoints import create_endpoint
    from ethhook.service.scope import OPERATOR
    from ethhook.service.validation import build_spec
    from ethhook.workqueue import enqueue_groups
    from tests.support.db import store_and_match
    from tests.support.factories import address, transfer

    one_run.count = getattr(one_run, "count", 0) + 1  # type: ignore[attr-defined]
    run_id = one_run.count  # type: ignore[attr-defined]
    contract = address(1000 + run_id)
    kind = "ord" if ordered else "par"
    path = f"/delay/{latency_ms}/{kind}-{run_id}"
    spec = build_spec(
        url=receiver.url(path),
        chains=[],
        contracts=[contract],
        events=[],
        confirmations=0,
        rate_limit_per_s=None,
        retry_schedule=None,
        name=None,
        settings=get_settings(),
        ordered="pause" if ordered else None,
    )
    with session_scope() as session:
        made = create_endpoint(session, spec, scope=OPERATOR)
    receiver.configure({path: made.secret or ""})
    events = [
        # Blocks of this run alone: an event is stored once per (chain, block hash, log index).
        transfer(contract=contract, block=run_id * 1000 + i // 100, log_index=i % 100, value=i)
        for i in range(n)
    ]
    groups = []
    with session_scope() as session:
        for start in range(0, n, 100):
            groups += store_and_match(session, events[start : start + 100], utcnow())
    receiver.reset()
    started = time.monotonic()
    enqueue_groups(groups)
    c.wait_until(lambda: receiver.stats()["count"] >= n, 600, 0.02, what=f"{n} webhooks")
    seconds = time.monotonic() - started
    stats = receiver.stats()
    assert stats["distinct"] == n and stats["bad_signatures"] == 0, stats
    return {
        "ordered": ordered,
        "latency_ms": latency_ms,
        "events": n,
        "seconds": seconds,
        "per_s": n / seconds,
        "out_of_order": stats["out_of_order"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--latencies", default="0,10,50", help="receiver latencies in ms")
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args()
    latencies = [int(x) for x in args.latencies.split(",")]
    c.on_sigterm_exit()
    results: list[dict[str, Any]] = []
    with c.services():
        receiver = c.ReceiverProcess()
        worker = c.start_worker("deliver-ordered", "deliver", "gevent", c.DELIVER_CONCURRENCY)
        beat = c.Worker("beat-ordered", beat=True, concurrency=2, queues="maintenance")
        try:
            one_run(receiver, 200, 0, True)  # warm-up: connections, imports
            one_run(receiver, 200, 0, False)
            for latency in latencies:
                n = EVENTS.get(latency, 100)
                for _ in range(args.runs):
                    for ordered in (False, True):  # baseline first, in the same round
                        result = one_run(receiver, n, latency, ordered)
                        c.log(json.dumps(result))
                        results.append(result)
        finally:
            beat.stop()
            worker.stop()
            receiver.stop()
    summary = summarize(results, latencies)
    print(json.dumps(summary, indent=2))
    if args.json:
        c.write_json(Path(args.json), {"runs": results, "summary": summary, "machine": c.machine()})


def summarize(results: list[dict[str, Any]], latencies: list[int]) -> list[dict[str, Any]]:
    """Medians per latency, ordered beside unordered, and the one-at-a-time model's prediction
    1 / (latency + overhead), the overhead being 1 / the ordered rate at the lowest latency."""

    def med(latency: int, ordered: bool) -> float:
        return c.median(
            [r["per_s"] for r in results if r["latency_ms"] == latency and r["ordered"] == ordered]
        )

    overhead_s = 1 / med(min(latencies), True) - min(latencies) / 1000
    return [
        {
            "latency_ms": latency,
            "unordered_per_s": round(med(latency, False), 1),
            "ordered_per_s": round(med(latency, True), 1),
            "ordered_runs": [
                round(r["per_s"], 1)
                for r in results
                if r["latency_ms"] == latency and r["ordered"]
            ],
            "ratio": round(med(latency, True) / med(latency, False), 3),
            "predicted_ordered_per_s": round(1 / (latency / 1000 + overhead_s), 1),
            "overhead_ms": round(overhead_s * 1000, 2),
            "out_of_order": sum(
                r["out_of_order"] for r in results if r["latency_ms"] == latency and r["ordered"]
            ),
        }
        for latency in latencies
    ]


if __name__ == "__main__":
    main()
