"""End to end: anvil → listener → match worker → deliver worker(s) → receiver, beside baselines.

One setup (anvil with two TestTokens, `ethhook listen`, a match worker and deliver worker(s) started
exactly as workers/README.md recommends, the aiohttp receiver of bench/receiver.py) serves four
measurements, each with its baseline taken in the same run:

* throughput: webhooks/s from events mined on anvil to signed requests received (10 endpoints watch
  token A's Transfers); baselines: a bare requests.Session POST loop and an aiohttp client with 100
  requests in flight, posting the same signed bodies to the same receiver;
* latency: from sending the transaction (anvil mines it at once; the listener sees the block a few
  ms later, so this is an upper bound of block-arrival → webhook) to the webhook's arrival, P50/P95/
  P99, at 200 events/s and at higher rates (one endpoint watches token B);
* memory: peak RSS of the listener, the match worker and the deliver worker, idle and under load;
* scaling: webhooks/s drained by 1, 2 and 4 deliver worker processes from a preloaded queue.

Usage: python -m bench.pipeline_bench [--quick]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import bench.common as c
from bench.baselines import aiohttp_client, requests_loop
from bench.pipeline import Pipeline


def run(quick: bool) -> dict[str, Any]:
    runs = 3
    tp_events = 400 if quick else 2000
    lat_seconds = 4.0 if quick else 10.0
    # Rates rise until one is not sustained (backlog still draining > 2 s after the last send).
    lat_rates = [200] if quick else [200, 400, 600, 800, 1000]
    drain_events = 280 if quick else 1000
    scale = [1, 2] if quick else [1, 2, 4]
    out: dict[str, Any] = {"quick": quick}
    with c.services() as svc:
        p = Pipeline(svc)
        try:
            # Memory, idle: everything started and warmed up, nothing to do.
            p.rss.reset()
            for _ in range(15):
                p.rss.sample_once()
                time.sleep(0.2)
            out["rss_idle_mb"] = dict(p.rss.peak)
            p.rss.reset()
            p.rss.start()

            url = p.receiver.url("/base")
            tp, base_req, base_aio = [], [], []
            for r in range(runs):
                base_req.append(requests_loop(url, p.base_secret, 3000))
                base_aio.append(aiohttp_client(url, p.base_secret, 20000))
                result = p.throughput_run(tp_events)
                tp.append(result)
                c.log(
                    f"pipeline: run {r + 1}: {result['webhooks_per_s']:,.0f} webhooks/s "
                    f"({result['webhooks']} received, {result['distinct']} distinct, "
                    f"{result['bad_signatures']} bad signatures); requests loop "
                    f"{base_req[-1]:,.0f}/s, aiohttp×100 {base_aio[-1]:,.0f}/s"
                )
            out["throughput"] = {
                "runs": tp,
                "median_webhooks_per_s": c.median([t["webhooks_per_s"] for t in tp]),
                "requests_loop_runs": base_req,
                "requests_loop_median": c.median(base_req),
                "aiohttp_runs": base_aio,
                "aiohttp_median": c.median(base_aio),
            }

            latency = []
            for rate in lat_rates:
                rows = []
                for r in range(runs):
                    row = p.latency_run(rate, lat_seconds)
                    rows.append(row)
                    c.log(
                        f"latency: {rate}/s run {r + 1}: sent {row['rate_sent']:.0f}/s, "
                        f"P50 {row['p50_ms']:.1f} P95 {row['p95_ms']:.1f} P99 {row['p99_ms']:.1f}"
                        f" ms, drained {row['drained_after_s']:.2f}s after the last send; "
                        f"stages (median ms): sent→stored {row['sent_to_stored_ms']:.0f}, "
                        f"stored→attempt {row['stored_to_attempt_ms']:.0f}, "
                        f"attempt→received {row['attempt_to_received_ms']:.0f}"
                    )
                    if row["drained_after_s"] > 2.0 and rate != lat_rates[0]:
                        break  # not sustained: one run says so, the next rates would too
                latency.append(
                    {
                        "rate": rate,
                        "runs": rows,
                        "p50_ms": c.median([x["p50_ms"] for x in rows]),
                        "p95_ms": c.median([x["p95_ms"] for x in rows]),
                        "p99_ms": c.median([x["p99_ms"] for x in rows]),
                        "drained_after_s": c.median([x["drained_after_s"] for x in rows]),
                        "stages_ms": {
                            k: c.median([x[k] for x in rows])
                            for k in (
                                "sent_to_stored_ms",
                                "stored_to_attempt_ms",
                                "attempt_to_received_ms",
                            )
                        },
                    }
                )
                if latency[-1]["drained_after_s"] > 2.0 and rate != lat_rates[0]:
                    break
            out["latency"] = latency
            p.rss.stop()
            out["rss_load_mb"] = dict(p.rss.peak)

            scaling = []
            for k in scale:
                rows = [p.drain_run(k, drain_events) for _ in range(runs)]
                for row in rows:
                    c.log(f"scaling: {k} deliver workers: {row['webhooks_per_s']:,.0f} webhooks/s")
                scaling.append(
                    {
                        "workers": k,
                        "runs": rows,
                        "median_webhooks_per_s": c.median([x["webhooks_per_s"] for x in rows]),
                    }
                )
            out["scaling"] = scaling
            out["scaling_aiohttp_baseline"] = aiohttp_client(url, p.base_secret, 20000)
        except BaseException:
            p.diagnose()
            raise
        finally:
            p.close()
    return out


def report(out: dict[str, Any]) -> str:
    tp = out["throughput"]
    lines = [
        "## End to end (anvil → listener → match → deliver → receiver)",
        "",
        "| | webhooks/s (median of 3) | runs |",
        "|---|---:|---|",
        f"| EthHook pipeline | {tp['median_webhooks_per_s']:,.0f} | "
        + ", ".join(f"{t['webhooks_per_s']:,.0f}" for t in tp["runs"])
        + " |",
        f"| bare requests.Session loop | {tp['requests_loop_median']:,.0f} | "
        + ", ".join(f"{x:,.0f}" for x in tp["requests_loop_runs"])
        + " |",
        f"| aiohttp, 100 in flight | {tp['aiohttp_median']:,.0f} | "
        + ", ".join(f"{x:,.0f}" for x in tp["aiohttp_runs"])
        + " |",
        "",
        f"Pipeline / requests loop: {tp['median_webhooks_per_s'] / tp['requests_loop_median']:.2f}×;"
        f" pipeline / aiohttp ceiling: {tp['median_webhooks_per_s'] / tp['aiohttp_median']:.2f}×."
        f" Duplicates: {sum(t['webhooks'] - t['distinct'] for t in tp['runs'])}; bad signatures: "
        f"{sum(t['bad_signatures'] for t in tp['runs'])}.",
        "",
        "## Latency (transaction sent → webhook received, one endpoint, medians of 3 runs)",
        "",
        "| events/s | runs | P50 ms | P95 ms | P99 ms | drained after last send (s) "
        "| sent→stored ms | stored→attempt ms | attempt→received ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in out["latency"]:
        st = row["stages_ms"]
        lines.append(
            f"| {row['rate']} | {len(row['runs'])} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} "
            f"| {row['p99_ms']:.1f} | {row['drained_after_s']:.2f} "
            f"| {st['sent_to_stored_ms']:.0f} | {st['stored_to_attempt_ms']:.0f} "
            f"| {st['attempt_to_received_ms']:.0f} |"
        )
    lines += ["", "## Peak RSS (MB)", "", "| process | idle | under load |", "|---|---:|---:|"]
    for name in sorted(set(out["rss_idle_mb"]) | set(out["rss_load_mb"])):
        idle = out["rss_idle_mb"].get(name)
        load = out["rss_load_mb"].get(name)
        lines.append(
            f"| {name} | {'' if idle is None else f'{idle:.0f}'} | "
            f"{'' if load is None else f'{load:.0f}'} |"
        )
    lines += [
        "",
        "## Scaling (deliver stage draining a preloaded queue)",
        "",
        f"| deliver worker processes (gevent, {c.DELIVER_CONCURRENCY} each) | webhooks/s (median of 3) | runs |",
        "|---:|---:|---|",
    ]
    for row in out["scaling"]:
        lines.append(
            f"| {row['workers']} | {row['median_webhooks_per_s']:,.0f} | "
            + ", ".join(f"{x['webhooks_per_s']:,.0f}" for x in row["runs"])
            + " |"
        )
    lines.append(
        f"\nSame-run aiohttp×100 ceiling: {out['scaling_aiohttp_baseline']:,.0f} requests/s."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    c.on_sigterm_exit()
    out = run(args.quick)
    c.write_json(c.ROOT / "bench" / "out" / "pipeline.json", out)
    print()
    print(report(out))


if __name__ == "__main__":
    main()
