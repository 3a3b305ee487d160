"""The end-to-end benchmark's results as Markdown tables, one function per scenario."""

from __future__ import annotations

import os
from typing import Any

import bench.common as c
from bench.ordered_live import report_ordered


def report(out: dict[str, Any]) -> str:
    lines: list[str] = []
    if "throughput" in out:
        lines += report_fanout(out["throughput"])
    if "burst" in out:
        lines += report_burst(out["burst"])
    if "latency" in out:
        lines += report_latency(out["latency"])
    if "ordered" in out:
        lines += report_ordered(out["ordered"])
    lines += report_rss(out["rss_idle_mb"], out["rss_load_mb"])
    if "scaling" in out:
        lines += report_scaling(out["scaling"], out["scaling_aiohttp_baseline"])
    return "\n".join(lines)


def runs_cell(values: list[float], fmt: str = ",.0f") -> str:
    return ", ".join(format(x, fmt) for x in values)


def report_fanout(tp: dict[str, Any]) -> list[str]:
    return [
        "## Fan-out: 10 endpoints (anvil → listener → match → deliver → receiver)",
        "",
        "| | webhooks/s (median of 3) | runs |",
        "|---|---:|---|",
        f"| EthHook pipeline | {tp['median_webhooks_per_s']:,.0f} | "
        f"{runs_cell([t['webhooks_per_s'] for t in tp['runs']])} |",
        f"| bare requests.Session loop | {tp['requests_loop_median']:,.0f} | "
        f"{runs_cell(tp['requests_loop_runs'])} |",
        f"| aiohttp, 100 in flight | {tp['aiohttp_median']:,.0f} | "
        f"{runs_cell(tp['aiohttp_runs'])} |",
        "",
        f"Pipeline / requests loop: {tp['median_webhooks_per_s'] / tp['requests_loop_median']:.2f}×;"
        f" pipeline / aiohttp ceiling: {tp['median_webhooks_per_s'] / tp['aiohttp_median']:.2f}×."
        f" Duplicates: {sum(t['webhooks'] - t['distinct'] for t in tp['runs'])}; bad signatures: "
        f"{sum(t['bad_signatures'] for t in tp['runs'])}.",
        "",
    ]


def report_burst(b: dict[str, Any]) -> list[str]:
    ratio = b["median_webhooks_per_s"] / b["requests_loop_median"]
    return [
        f"## One endpoint, bursts of {b['events']:,} events (transactions of 100, back to back)",
        "",
        "| | median of 3 | runs |",
        "|---|---:|---|",
        f"| EthHook, webhooks/s | {b['median_webhooks_per_s']:,.0f} | "
        f"{runs_cell([x['webhooks_per_s'] for x in b['runs']])} |",
        f"| bare requests.Session loop, requests/s | {b['requests_loop_median']:,.0f} | "
        f"{runs_cell(b['requests_loop_runs'])} |",
        f"| P50 transaction sent → webhook, ms | {b['p50_ms']:,.0f} | "
        f"{runs_cell([x['p50_ms'] for x in b['runs']])} |",
        f"| P95 transaction sent → webhook, ms | {b['p95_ms']:,.0f} | "
        f"{runs_cell([x['p95_ms'] for x in b['runs']])} |",
        "",
        f"EthHook / requests loop: {ratio:.2f}×. Duplicates: "
        f"{sum(x['webhooks'] - x['distinct'] for x in b['runs'])}; bad signatures: "
        f"{sum(x['bad_signatures'] for x in b['runs'])}.",
        "",
        cpu_line([x["cpu_percent"] for x in b["runs"]]),
        "",
        *report_cpu_per_webhook(b),
    ]


def report_cpu_per_webhook(b: dict[str, Any]) -> list[str]:
    """CPU per webhook by process (medians), against the bare loop's CPU per request."""
    names = sorted({name for run in b["runs"] for name in run.get("cpu_ms_per_webhook", {})})
    if not names:
        return []
    rows = [
        f"| {name} | {c.median([x['cpu_ms_per_webhook'].get(name, 0.0) for x in b['runs']]):.3f} |"
        for name in names
    ]
    pg_names = sorted({n for run in b["runs"] for n in run.get("postgresql_ms_per_webhook", {})})
    rows += [
        f"| postgresql, serving {name} | "
        f"{c.median([x['postgresql_ms_per_webhook'].get(name, 0.0) for x in b['runs']]):.3f} |"
        for name in pg_names
    ]
    total, loop = b["cpu_ms_per_webhook_median"], b["requests_loop_cpu_ms_median"]
    return [
        "| process | CPU per webhook, ms (median) |",
        "|---|---:|",
        *rows,
        f"| **EthHook** (listener, workers, PostgreSQL but other databases, Redis) "
        f"| **{total:.3f}** |",
        f"| bare requests loop, per request | {loop:.3f} |",
        "",
        f"EthHook's CPU per webhook / the loop's per request: {total / loop:.2f}×.",
        "",
    ]


def cpu_line(runs: list[dict[str, float]]) -> str:
    """Each process's CPU during the runs (% of one core, median), busiest first."""
    names = {name for run in runs for name in run}
    share = {name: c.median([run.get(name, 0.0) for run in runs]) for name in names}
    busiest = sorted(share.items(), key=lambda kv: -kv[1])
    return (
        f"CPU while it ran, % of one core (median of runs; the machine has {os.cpu_count()}): "
        + ", ".join(f"{name} {pct:.0f}" for name, pct in busiest)
        + f"; total {sum(share.values()):.0f}."
    )


def report_latency(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Latency (transaction sent → webhook received, one endpoint, medians of 3 runs)",
        "",
        "| events/s | runs | P50 ms | P95 ms | P99 ms | drained after last send (s) "
        "| sent→stored ms | stored→matching ms | matching→attempt ms | attempt→received ms "
        "| same-run chain floor, P50 / P95 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        st = row["stages_ms"]
        lines.append(
            f"| {row['rate']} | {len(row['runs'])} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} "
            f"| {row['p99_ms']:.1f} | {row['drained_after_s']:.2f} "
            f"| {st['sent_to_stored_ms']:.0f} | {st['stored_to_matching_ms']:.0f} "
            f"| {st['matching_to_attempt_ms']:.0f} "
            f"| {st['attempt_to_received_ms']:.0f} "
            f"| {row['chain_floor']['p50_ms']:.1f} / {row['chain_floor']['p95_ms']:.1f} |"
        )
    lines.append("")
    for row in rows:
        lines.append(
            f"* {row['rate']} events/s: " + cpu_line([x["cpu_percent"] for x in row["runs"]])
        )
    return [*lines, ""]


def report_rss(idle_mb: dict[str, float], load_mb: dict[str, float]) -> list[str]:
    lines = ["## Peak RSS (MB)", "", "| process | idle | under load |", "|---|---:|---:|"]
    for name in sorted(set(idle_mb) | set(load_mb)):
        idle, load = idle_mb.get(name), load_mb.get(name)
        lines.append(
            f"| {name} | {'' if idle is None else f'{idle:.0f}'} | "
            f"{'' if load is None else f'{load:.0f}'} |"
        )
    return [*lines, ""]


def report_scaling(rows: list[dict[str, Any]], aiohttp_baseline: float) -> list[str]:
    lines = [
        "## Scaling (deliver stage draining a preloaded queue)",
        "",
        f"| deliver worker processes (gevent, {c.DELIVER_CONCURRENCY} each) "
        "| webhooks/s (median of 3) | runs |",
        "|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['workers']} | {row['median_webhooks_per_s']:,.0f} | "
            f"{runs_cell([x['webhooks_per_s'] for x in row['runs']])} |"
        )
    return [*lines, "", f"Same-run aiohttp×100 ceiling: {aiohttp_baseline:,.0f} requests/s."]
