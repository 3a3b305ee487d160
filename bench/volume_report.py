"""The volume benchmark's results as Markdown: bursts, queries, disk and retention."""

from __future__ import annotations

import statistics
from typing import Any

# The processes CPU per webhook is split into (each with its children), as bench/pipeline.py names
# them; "deliver worker 0" is the one deliver worker.
PROCESSES = ("listener", "match worker", "deliver worker 0", "postgresql", "redis")
ACCEPT = 0.9
HISTORY = ("events", "deliveries", "delivery_attempts")


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cell(values: list[float], fmt: str) -> str:
    return f"**{format(med(values), fmt)}** ({', '.join(format(v, fmt) for v in values)})"


def report(out: dict[str, Any]) -> str:
    a = out["args"]
    size = f"{a['days']} days × {a['per_day']:,} rows a day" if "seed" in out else "history given"
    lines = [f"# Volume: {size} ({out['started']})", ""]
    if "seed" in out:
        s = out["seed"]
        lines.append(
            f"Seeded {s['rows_per_table']:,} rows in each history table (the days and today's so"
            f" far) in {s['seed_s']:.0f} s."
        )
    else:
        lines.append("History: a database seeded before (--history-url).")
    rows = {t: out["disk_before"]["history"][f"{t}_rows_estimate"] for t in HISTORY}
    lines.append(
        "Rows with history when the queries ran (ANALYZE's count): "
        + ", ".join(f"{t} {n:,}" for t, n in rows.items())
        + "."
    )
    partitions = {t: out["disk_before"]["history"][f"{t}_partitions"] for t in HISTORY}
    lines += ["", *report_bursts(out["bursts"], a["events"])]
    lines += report_queries(out["queries"], partitions)
    lines += report_disk(out["disk_before"], out["disk_after"])
    lines += report_retention(out["retention"])
    return "\n".join(lines)


def report_bursts(runs: dict[str, list[dict[str, Any]]], events: int) -> list[str]:
    e, h = runs["empty"], runs["history"]
    rate = {k: med([r["webhooks_per_s"] for r in v]) for k, v in runs.items()}
    cpu = {k: med([r["ethhook_cpu_ms"] for r in v]) for k, v in runs.items()}
    ratio = rate["history"] / rate["empty"]
    pairs = [y["webhooks_per_s"] / x["webhooks_per_s"] for x, y in zip(e, h, strict=True)]
    lines = [
        f"## One endpoint, bursts of {events:,} events: medians of {len(e)} (runs)",
        "",
        "| | empty database | with history |",
        "|---|---|---|",
        f"| webhooks/s | {cell([r['webhooks_per_s'] for r in e], ',.0f')} "
        f"| {cell([r['webhooks_per_s'] for r in h], ',.0f')} |",
        f"| EthHook CPU per webhook, ms | {cell([r['ethhook_cpu_ms'] for r in e], '.3f')} "
        f"| {cell([r['ethhook_cpu_ms'] for r in h], '.3f')} |",
    ]
    for name in PROCESSES:
        values = {k: [r["cpu_ms_per_webhook"].get(name, 0.0) for r in v] for k, v in runs.items()}
        lines.append(
            f"| … {name} | {cell(values['empty'], '.3f')} | {cell(values['history'], '.3f')} |"
        )
    lines += [
        f"| P50 / P95 ms | {med([r['p50_ms'] for r in e]):.0f} / {med([r['p95_ms'] for r in e]):.0f}"
        f" | {med([r['p50_ms'] for r in h]):.0f} / {med([r['p95_ms'] for r in h]):.0f} |",
        f"| bare requests loop, requests/s | {cell([r['requests_loop'] for r in e], ',.0f')} "
        f"| {cell([r['requests_loop'] for r in h], ',.0f')} |",
        f"| bare requests loop, CPU ms per request | "
        f"{cell([r['requests_loop_cpu_ms'] for r in e], '.3f')} "
        f"| {cell([r['requests_loop_cpu_ms'] for r in h], '.3f')} |",
        "",
        f"History / empty, webhooks/s: **{ratio:.2f}×** of the medians (each pair: "
        f"{', '.join(f'{x:.2f}' for x in pairs)}); target ≥ {ACCEPT}×: "
        f"**{'met' if ratio >= ACCEPT else 'not met'}**. CPU per webhook: "
        f"{cpu['history'] / cpu['empty']:.2f}× the empty database's.",
        "",
    ]
    return lines


def _partitions(stmt: dict[str, Any]) -> str:
    """`deliveries 14 (7 run), events 1`: the partitions of each table a statement's plan reads."""
    planned, executed = stmt["planned_by_table"], stmt["executed_by_table"]
    parts = []
    for table, n in sorted(planned.items()):
        ran = executed.get(table, 0)
        parts.append(f"{table} {n}" + ("" if ran == n else f" ({ran} run)"))
    return ", ".join(parts) or "none"


def report_queries(queries: dict[str, dict[str, Any]], partitions: dict[str, int]) -> list[str]:
    lines = [
        "## The product's queries: median ms of 5 calls, and the history partitions each of its"
        " statements reads (plan; executed, where fewer) on the database with history",
        "",
        f"Partitions there: {', '.join(f'{t} {n}' for t, n in partitions.items())}.",
        "",
        "| query | empty, ms | with history, ms | its statements: partitions read |",
        "|---|---:|---:|---|",
    ]
    for name, h in queries["history"].items():
        e = queries["empty"][name]
        parts = "; ".join(_partitions(st) for st in h["statements"])
        lines.append(f"| {name} | {e['median_ms']:.1f} | {h['median_ms']:.1f} | {parts} |")
    lines.append("")
    return lines


def mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def report_disk(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    lines = [
        "## Disk (history database; the empty one beside it)",
        "",
        "| | before retention | after | empty database |",
        "|---|---:|---:|---:|",
        f"| database | {mb(before['history']['database'])} | {mb(after['history']['database'])}"
        f" | {mb(before['empty']['database'])} |",
    ]
    for table in HISTORY:
        b, a, e = before["history"], after["history"], before["empty"]
        lines.append(
            f"| {table} (of it indexes), partitions | {mb(b[table])} ({mb(b[table + '_indexes'])}),"
            f" {b[table + '_partitions']} | {mb(a[table])} ({mb(a[table + '_indexes'])}),"
            f" {a[table + '_partitions']} | {mb(e[table])}, {e[table + '_partitions']} |"
        )
    lines.append("")
    return lines


def report_retention(retention: dict[str, list[dict[str, Any]]]) -> list[str]:
    h, e = retention["history"], retention["empty"]
    held = sorted({x for r in h for x in r["held"]})
    return [
        "## Retention of the oldest day (run_retention, the clock just past it)",
        "",
        f"With history: {cell([r['seconds'] for r in h], '.2f')} s per day, each dropping "
        f"{', '.join(str(len(r['dropped'])) for r in h)} partitions "
        f"(~{med([r['rows_dropped_estimate'] for r in h]):,.0f} rows in the three tables); held: "
        f"{'; '.join(held) or 'none'}. Empty database (its empty oldest day): "
        f"{e[0]['seconds']:.2f} s, {len(e[0]['dropped'])} partitions. The history database after"
        f" each drop: {', '.join(mb(r['database_bytes_after']) for r in h)}.",
        "",
    ]
