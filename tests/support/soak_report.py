"""The soak's report (tests/support/soak.py): counts and latencies over the events in the
receipts, and the summary for people."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from tests.support.faults_stream import TimedStream
from tests.support.meters import percentiles

# Latency of events sent from a fault's start to this long after it ends counts as "under
# faults"; the rest is the steady latency.
FAULT_SHADOW_S = 30.0


def rounded(sizes: dict[str, float]) -> dict[str, float]:
    return {name: round(mb, 1) for name, mb in sizes.items()}


def counts(
    stream: TimedStream,
    arrivals: dict[tuple[str, int], float],
    expected: set[tuple[str, int]],
    outcome: Any,
    injected: list[Any],
    stream_s: float,
    started: float,
) -> dict[str, Any]:
    """Counts and latencies over the events in the receipts."""
    wall_start = time.time() - (time.monotonic() - started)
    windows = [(f.at_s, f.at_s + f.took_s + FAULT_SHADOW_S) for f in injected]
    latencies, steady = [], []
    for key in expected:
        if key in arrivals and key[0] in stream.sent_at:
            sent = stream.sent_at[key[0]]
            ms = 1000 * (arrivals[key] - sent)
            latencies.append(ms)
            if not any(start <= sent - wall_start <= end for start, end in windows):
                steady.append(ms)
    return {
        "events_emitted": len(expected),
        "events_received": outcome.received,
        "lost": outcome.lost,
        "repeated_ids": outcome.repeated_ids,
        "unverified": outcome.unverified,
        "emitted_per_s": round(len(expected) / stream_s, 1),
        "stream_s": round(stream_s, 1),
        "latency_all": percentiles(latencies),
        "latency_steady": percentiles(steady),
        "steady_events": len(steady),
        "faults": [asdict(f) for f in injected],
    }


def summary(report: dict[str, Any]) -> str:
    """The report for people."""
    lat, steady = report["latency_all"], report["latency_steady"]
    lines = [
        f"SOAK {report['minutes']:g} min at {report['rate']:g} events/s "
        f"({report['events_per_tx']} per tx), seed {report['seed']}, "
        f"a fault every {report['fault_every_s']:g} s, "
        f"dispatch lease {report['dispatch_lease_s']:g} s",
        f"  events emitted {report['events_emitted']} ({report['emitted_per_s']}/s over "
        f"{report['stream_s']} s), received {report['events_received']}, "
        f"LOST {report['lost']}, repeated webhook-ids {report['repeated_ids']}, "
        f"unverified {report['unverified']}; the last arrived {report['drained_s']} s after "
        "the stream stopped",
        f"  latency sent → received, all events: P50 {lat.get('p50_ms')} ms, "
        f"P95 {lat.get('p95_ms')} ms, P99 {lat.get('p99_ms')} ms, max {lat.get('max_ms')} ms",
        f"  latency away from faults ({report['steady_events']} events sent more than "
        f"{FAULT_SHADOW_S:.0f} s after a fault ended): P50 {steady.get('p50_ms')} ms, "
        f"P95 {steady.get('p95_ms')} ms, P99 {steady.get('p99_ms')} ms",
        "  faults:",
        *(f"    {f['at_s']:7.1f} s  {f['fault']} (back after {f['took_s']} s)"
          for f in report["faults"]),
        "  RSS MB (process with its children): start / peak / end",
        *(f"    {name:9} {report['rss_start_mb'].get(name, 0):7.1f} "
          f"{report['rss_peak_mb'].get(name, 0):7.1f} {report['rss_end_mb'].get(name, 0):7.1f}"
          f"   restarted {report['restarts'].get(name, 0)}x"
          for name in report["rss_start_mb"]),
        f"  processes that exited by themselves: "
        f"{', '.join(d['process'] + ' at ' + str(d['at_s']) + ' s' for d in report['died']) or 'none'}; "
        f"'Unrecoverable error' logged: {report['unrecoverable'] or 'none'}",
        f"  stream ran to the end: {report['stream_alive_to_the_end']}; logs in {report['logs']}",
    ]  # fmt: skip
    return "\n".join(lines)
