"""An `--ordered` endpoint under live traffic, beside an unordered one that gets the same events.

bench/ordered_bench.py measures an ordered endpoint's sending alone (its events matched
in-process). Here the events come the whole way: anvil → `ethhook listen` → the match worker,
whose two processes match batches side by side (a later batch may be matched first: its
deliveries for the ordered endpoint are then held until the earlier one is, workqueue.chainorder)
→ one deliver worker, which sends the ordered endpoint's webhooks one at a time. The baseline is
the pipeline's latency endpoint (`/lat/e0`): same contract, same events, same moments. At each
rate, transactions of PER_TX Transfers go out for `seconds`; each webhook's delay from its
transaction sent to its arrival is read per endpoint. The receiver counts any ordered webhook
whose sequence is below the one before it (`out_of_order`, must stay 0) and the distinct
webhook-ids (duplicates must stay 0).

Run by `python -m bench.pipeline_bench --only ordered`.
"""

from __future__ import annotations

from typing import Any

import bench.common as c
from bench.pipeline import Pipeline

PLAIN = "/lat/e0"  # the pipeline's latency endpoint on token B
ORDERED = "/lat/ord"  # `/ord`: the receiver checks its sequence order
PER_TX = 20


def ordered_live(p: Pipeline, runs: int, rates: list[int], seconds: float) -> list[dict[str, Any]]:
    """Both endpoints at fixed rates, from the lowest up to the first one the ordered endpoint
    does not keep up with (its webhooks still arriving > 2 s after the last send)."""
    from tests.support.endpoints import add_endpoint
    from tests.support.factories import TRANSFER

    _, secret = add_endpoint(
        p.receiver.url(ORDERED), contracts=[p.token_b.address], events=[TRANSFER], ordered="pause"
    )
    p.receiver.configure({ORDERED: secret})
    out: list[dict[str, Any]] = []
    for rate in rates:
        rows = [one_run(p, rate, seconds, r) for r in range(runs)]
        out.append(
            {
                "rate": rate,
                "runs": rows,
                **{
                    f"{name}_{k}": c.median([x[path][k] for x in rows])
                    for name, path in (("plain", PLAIN), ("ordered", ORDERED))
                    for k in ("p50_ms", "p95_ms", "p99_ms")
                },
                "drained_after_s": c.median([x["drained_after_s"] for x in rows]),
                "out_of_order": sum(x["out_of_order"] for x in rows),
                "duplicates": sum(x["duplicates"] for x in rows),
            }
        )
        if out[-1]["drained_after_s"] > 2.0:
            break
    return out


def one_run(p: Pipeline, rate: int, seconds: float, r: int) -> dict[str, Any]:
    p.receiver.reset()
    sent_at, started, finished = p.send_paced(rate, seconds, PER_TX)
    expected = 2 * len(sent_at) * PER_TX  # each event to both endpoints
    drained_after_s = p.wait_received(expected, finished)
    arrivals, stats = p.receiver.arrivals(), p.receiver.stats()
    row = {
        "rate_sent": len(sent_at) * PER_TX / (finished - started),
        "drained_after_s": drained_after_s,
        "received": stats["count"],
        "expected": expected,
        "out_of_order": stats["out_of_order"],
        "duplicates": stats["count"] - stats["distinct"],
        PLAIN: percentiles(arrivals, sent_at, PLAIN),
        ORDERED: percentiles(arrivals, sent_at, ORDERED),
    }
    c.log(
        f"ordered: {rate}/s run {r + 1}: unordered P50 {row[PLAIN]['p50_ms']:.1f} P95 "
        f"{row[PLAIN]['p95_ms']:.1f} ms; ordered P50 {row[ORDERED]['p50_ms']:.1f} P95 "
        f"{row[ORDERED]['p95_ms']:.1f} P99 {row[ORDERED]['p99_ms']:.1f} ms; "
        f"{row['received']}/{expected} received, drained {drained_after_s:.2f}s after the last "
        f"send, {row['out_of_order']} out of order, {row['duplicates']} duplicates"
    )
    return row


def percentiles(
    arrivals: list[list[Any]], sent_at: dict[str, float], path: str
) -> dict[str, float]:
    """Transaction sent → webhook received on one path: P50, P95, P99, max (ms)."""
    lat_ms = [
        (at - sent_at[tx.lower()]) * 1000
        for at, tx, where in arrivals
        if where == path and tx.lower() in sent_at
    ]
    return {"received": len(lat_ms), **c.delay_spread(lat_ms)}


def report_ordered(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## An ordered endpoint under live traffic (transaction sent → webhook received, ms, "
        "medians of the runs)",
        "",
        "| events/s | runs | unordered P50 / P95 | ordered P50 / P95 / P99 | ordered P50 − "
        "unordered P50 | drained after last send (s) | out of order | duplicates |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['rate']} | {len(row['runs'])} "
            f"| {row['plain_p50_ms']:.1f} / {row['plain_p95_ms']:.1f} "
            f"| {row['ordered_p50_ms']:.1f} / {row['ordered_p95_ms']:.1f} / "
            f"{row['ordered_p99_ms']:.1f} "
            f"| {row['ordered_p50_ms'] - row['plain_p50_ms']:+.1f} "
            f"| {row['drained_after_s']:.2f} | {row['out_of_order']} | {row['duplicates']} |"
        )
    return [*lines, ""]
