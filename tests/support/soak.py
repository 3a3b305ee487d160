"""The soak driver: the whole pipeline under a steady stream for minutes, a random fault every
minute; `python -m bench.soak` runs it from the command line, tests/faults/test_soak.py for two
minutes in the suite.

The pipeline of the fault tests (tests/support/faults_rig.py: a private PostgreSQL cluster and
redis-server, anvil, the listener and the match, deliver and beat workers as real processes, a
verifying receiver) takes `rate` events/s (`events_per_tx` Transfers per transaction) for
`minutes`. Every `fault_every_s` one fault from FAULTS is injected, drawn with a seeded RNG from a
shuffled deck (every kind once before any repeats); a killed process is started again after
KILLED_FOR_S. Then the stream stops, everything settles, and the report gives events emitted
(from the receipts) and received, LOST (must be 0), repeated webhook-ids, latency from
transaction sent to webhook received, the faults with their times, CPU and the RSS of every
process (with its children) at start and at end.

The pipeline runs on the fault tests' settings (short leases: a killed deliver worker's
deliveries are sent again after 20 s) but for the dispatch lease, the product's 60 s unless
`dispatch_lease_s` says otherwise (see DISPATCH_LEASE_S). The test receiver answers with
TCP_NODELAY (see answer_without_nagle) and the stream credits the same addresses over and over
(see SameAddresses): without either, the test equipment, not the pipeline, set the pace.
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from tests.support.faults_rig import Rig, make_rig
from tests.support.faults_stream import Arrivals, TimedStream, settle
from tests.support.meters import CpuMeter, percentiles

KILLED_FOR_S = 3.0
REDIS_DOWN_S = 10.0
POSTGRES_DOWN_S = 5.0
# Latency of events sent from a fault's start to this long after it ends counts as "under
# faults"; the rest is the steady latency.
FAULT_SHADOW_S = 30.0
SETTLE_TIMEOUT_S = 600.0
# The product's default. The fault tests' 5 s makes their recovery quick, but under a sustained
# stream any backlog longer than the lease (a 10 s Redis outage at 300 events/s is one) makes beat
# lease the queued deliveries again and again, and the messages already queued for them find
# them taken: 91 % of the deliver tasks of a 10-minute soak with 5 s claimed nothing, and the
# pipeline fell further behind until the stream stopped (`--dispatch-lease-s 5` shows it).
DISPATCH_LEASE_S = 60.0
SELF = "soak (stream, receiver)"  # this process alone: every other one is its child


def _kill_and_restart(name: str) -> Callable[[Rig], None]:
    def inject(rig: Rig) -> None:
        rig.pipeline.kill(name, signal.SIGKILL)
        time.sleep(KILLED_FOR_S)
        rig.pipeline.start(name)

    return inject


FAULTS: dict[str, Callable[[Rig], None]] = {
    "deliver worker SIGKILL": _kill_and_restart("deliver"),
    "match worker SIGKILL": _kill_and_restart("match"),
    "listener SIGKILL": _kill_and_restart("listener"),
    "Redis FLUSHALL": lambda rig: rig.redis.flushall(),
    f"Redis restart ({REDIS_DOWN_S:.0f} s down)": lambda rig: rig.redis.restart(REDIS_DOWN_S),
    f"PostgreSQL restart ({POSTGRES_DOWN_S:.0f} s down)": lambda rig: rig.postgres.restart(
        POSTGRES_DOWN_S
    ),
}


@dataclass
class Injected:
    fault: str
    at_s: float  # from the start of the stream
    took_s: float  # until the service or process was back


class FaultDeck:
    """Seeded draws from FAULTS: a shuffled deck, reshuffled when it runs out."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.deck: list[str] = []

    def draw(self) -> str:
        if not self.deck:
            self.deck = sorted(FAULTS)
            self.rng.shuffle(self.deck)
        return self.deck.pop()


class SameAddresses:
    """The token, but every `emitTransfers` credits the same addresses. Each Transfer to a new
    address is a new storage slot, and anvil's cost per block grows with the state: at 300 new
    slots a second its CPU went from 4 % to 60 % of a core in 4 minutes and the stream could no
    longer be mined on time. Events stay distinct by transaction hash and log index."""

    def __init__(self, token: Any) -> None:
        self.token = token
        self.address = token.address

    def emit_tx_data(self, n: int, base: int) -> str:
        return self.token.emit_tx_data(n, 1_000_000)


def answer_without_nagle(rig: Rig) -> None:
    """TCP_NODELAY on the receiver's connections. Its handler writes the headers and the body of
    an answer separately, so on a kept-alive connection Nagle's algorithm holds the body until the
    client's delayed ACK: 40 ms per webhook (22 requests/s on one connection, ~200/s with the 16
    an endpoint gets in flight; 960/s and 0.8 ms with it). The soak measures the pipeline, not
    that stall."""
    rig.receiver.server.RequestHandlerClass.disable_nagle_algorithm = True


def exited(rig: Rig, at_s: float, known: set[str]) -> list[dict[str, Any]]:
    """Processes of the pipeline that exited by themselves (a fault's kill is not one): each is a
    bug, reported and left down."""
    found = []
    for name, proc in rig.pipeline.procs.items():
        if name not in known and proc.poll() is not None:
            tail = rig.pipeline.log(name).splitlines()[-5:]
            found.append({"process": name, "at_s": round(at_s, 1), "exit_code": proc.returncode,
                          "log_tail": tail})  # fmt: skip
            log(f"{name} EXITED by itself (code {proc.returncode}): {tail[-1:]}")
    return found


def unrecoverable(rig: Rig) -> dict[str, int]:
    """Celery's "Unrecoverable error" per process log: a worker that logged it stops consuming
    (and may never exit: the maintenance worker hung with beat stopped)."""
    counts = {
        name: rig.pipeline.log(name).count("Unrecoverable error") for name in rig.pipeline.procs
    }
    return {name: n for name, n in counts.items() if n}


def restart_with(rig: Rig, settings: dict[str, str]) -> None:
    """Every process of the pipeline started again with these settings over the fault tests'."""
    if all(rig.pipeline.env.get(name) == value for name, value in settings.items()):
        return
    rig.pipeline.stop()
    rig.pipeline.env.update(settings)
    rig.pipeline.start()


def process_ids(rig: Rig) -> dict[str, int]:
    """Every process of the rig by name: the pipeline's, anvil, PostgreSQL, Redis."""
    pids = {name: proc.pid for name, proc in rig.pipeline.procs.items()}
    if rig.node.proc is not None:
        pids["anvil"] = rig.node.proc.pid
    postmaster = rig.postgres.dir / "postmaster.pid"
    if postmaster.exists():
        pids["postgres"] = int(postmaster.read_text().split("\n", 1)[0])
    if rig.redis.proc is not None and rig.redis.proc.poll() is None:
        pids["redis"] = rig.redis.proc.pid
    pids[SELF] = psutil.Process().pid
    return pids


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def soak(
    minutes: float = 10.0,
    rate: float = 300.0,
    events_per_tx: int = 30,
    seed: int | None = None,
    fault_every_s: float = 60.0,
    out: Path | None = None,
    progress_every_s: float = 10.0,
    dispatch_lease_s: float = DISPATCH_LEASE_S,
) -> dict[str, Any]:
    """Run the soak; the report (also written to `out` as JSON when given)."""
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    deck = FaultDeck(random.Random(seed))
    duration_s = minutes * 60
    tx_per_s = rate / events_per_tx
    log(f"soak: {minutes:g} min at {rate:g} events/s ({tx_per_s:g} tx/s x {events_per_tx}), "
        f"a fault every {fault_every_s:g} s, dispatch lease {dispatch_lease_s:g} s, "
        f"seed={seed}")  # fmt: skip
    rigs = make_rig()
    rig = next(rigs)
    try:
        answer_without_nagle(rig)
        restart_with(rig, {"ETHHOOK_DISPATCH_LEASE_S": f"{dispatch_lease_s:g}"})
        restarts_before = Counter(rig.pipeline.restarts)
        cpu = CpuMeter()
        cpu.tick(process_ids(rig), alone=(SELF,))
        rss_start = rig.pipeline.rss_mb()
        rss_peak = dict(rss_start)
        progress: list[dict[str, Any]] = []
        injected: list[Injected] = []
        arrivals = Arrivals(rig.receiver)
        token = SameAddresses(rig.token)
        stream = TimedStream(rig.node, token, events_per_tx, tx_per_s).start()
        started = time.monotonic()
        next_fault = fault_every_s
        next_progress = progress_every_s
        died: list[dict[str, Any]] = []
        while (elapsed := time.monotonic() - started) < duration_s and stream.alive:
            died += exited(rig, elapsed, {d["process"] for d in died})
            if elapsed >= next_fault:
                name = deck.draw()
                log(f"fault {len(injected) + 1}: {name} at {elapsed:.0f} s")
                began = time.monotonic()
                FAULTS[name](rig)
                injected.append(
                    Injected(name, round(elapsed, 1), round(time.monotonic() - began, 1))
                )
                next_fault += fault_every_s
            elif elapsed >= next_progress:
                rss = rig.pipeline.rss_mb()
                for name, mb in rss.items():
                    rss_peak[name] = max(rss_peak.get(name, 0.0), mb)
                sample = {
                    "t_s": round(elapsed),
                    "events_sent": len(stream.sent) * events_per_tx,
                    "events_received": len(arrivals.update()),
                    "webhooks_received": len(rig.receiver.requests),
                    "machine_cpu_pct": psutil.cpu_percent(),
                    "cpu_pct": cpu.tick(process_ids(rig), alone=(SELF,)),
                    "rss_mb": {name: round(mb, 1) for name, mb in rss.items()},
                }
                progress.append(sample)
                log(f"t={sample['t_s']}s sent={sample['events_sent']} "
                    f"received={sample['events_received']} "
                    f"behind={sample['events_sent'] - sample['events_received']} "
                    f"cpu={sample['machine_cpu_pct']}% {sample['cpu_pct']}")  # fmt: skip
                next_progress += progress_every_s
            time.sleep(0.2)
        stream_alive = stream.alive
        stream_s = time.monotonic() - started
        died += exited(rig, stream_s, {d["process"] for d in died})
        stopped_at = time.time()
        expected = stream.stop()
        log(f"stream stopped after {stream_s:.0f} s: {len(expected)} events in the receipts; "
            "settling")  # fmt: skip
        # Waiting here reads each request once; settle() then counts once.
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline and not expected <= arrivals.update().keys():
            time.sleep(1.0)
        outcome = settle(rig.receiver, expected, max(deadline - time.monotonic(), 1.0),
                         f"soak {minutes:g} min at {rate:g} events/s, seed {seed}")  # fmt: skip
        report = _report(stream, arrivals.update(), expected, outcome, injected, stream_s, started)
        last = max((arrivals.first[key] for key in expected if key in arrivals.first), default=0.0)
        report["drained_s"] = round(max(last - stopped_at, 0.0), 1)
        report.update(
            minutes=minutes, rate=rate, events_per_tx=events_per_tx, seed=seed,
            fault_every_s=fault_every_s, stream_alive_to_the_end=stream_alive, died=died,
            unrecoverable=unrecoverable(rig),
            rss_start_mb=_rounded(rss_start), rss_peak_mb=_rounded(rss_peak),
            rss_end_mb=_rounded(rig.pipeline.rss_mb()), dispatch_lease_s=dispatch_lease_s,
            restarts=dict(rig.pipeline.restarts - restarts_before),
            progress=progress, logs=str(rig.root),
        )  # fmt: skip
    finally:
        rigs.close()
    print(summary(report), flush=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        log(f"report in {out}")
    return report


def _rounded(sizes: dict[str, float]) -> dict[str, float]:
    return {name: round(mb, 1) for name, mb in sizes.items()}


def _report(
    stream: TimedStream,
    arrivals: dict[tuple[str, int], float],
    expected: set[tuple[str, int]],
    outcome: Any,
    injected: list[Injected],
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
