"""The soak driver: the whole pipeline under a steady stream for minutes, a random fault every
minute; `python -m bench.soak` runs it from the command line, tests/faults/test_soak.py for three
minutes in the suite (on one-minute partitions with retention).

The pipeline of the fault tests (tests/support/faults_rig.py: a private PostgreSQL cluster and
redis-server, anvil, the listener and the match, deliver and beat workers as real processes, a
verifying receiver) takes `rate` events/s (`events_per_tx` Transfers per transaction) for
`minutes`. Every `fault_every_s` one fault from FAULTS is injected, drawn with a seeded RNG from a
shuffled deck (every kind once before any repeats); a killed process is started again after
KILLED_FOR_S. Then the stream stops, everything settles, and the report gives events emitted
(from the receipts) and received, LOST (must be 0), repeated webhook-ids, latency from
transaction sent to webhook received, the faults with their times, CPU and the RSS of every
process (with its children) at start and at end. With `retention` the history is partitioned
and retention runs while the stream goes on; the database's size is sampled and the report says
what retention dropped and kept (tests/support/soak_history.py).

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from tests.support.faults_rig import Rig, make_rig
from tests.support.faults_stream import Arrivals, TimedStream, settle
from tests.support.meters import CpuMeter
from tests.support.soak_history import HistoryWatch, Retention, summary_lines
from tests.support.soak_report import counts, rounded, summary

KILLED_FOR_S = 3.0
REDIS_DOWN_S = 10.0
POSTGRES_DOWN_S = 5.0
SETTLE_TIMEOUT_S = 600.0
# After settling, how long past one partition interval to wait for a retention run, and how
# often to sample meanwhile (see wait_for_retention).
RETENTION_MARGIN_S = 20.0
RETENTION_SAMPLE_S = 5.0
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


@dataclass
class StreamLoop:
    """The soak while the stream runs: a fault every `fault_every_s`, a progress sample every
    `progress_every_s` (events sent and received, CPU and RSS of every process), and the
    processes that exited by themselves."""

    rig: Rig
    stream: TimedStream
    arrivals: Arrivals
    deck: FaultDeck
    events_per_tx: int
    fault_every_s: float
    progress_every_s: float
    cpu: CpuMeter = field(default_factory=CpuMeter)
    rss_peak: dict[str, float] = field(default_factory=dict)
    progress: list[dict[str, Any]] = field(default_factory=list)
    injected: list[Injected] = field(default_factory=list)
    died: list[dict[str, Any]] = field(default_factory=list)
    history: HistoryWatch | None = None  # with partitions and retention: the database's size
    # (at s, for s): the deliver worker stopped that long, no fault meanwhile (deliveries stay
    # pending: with a retention shorter than that, their partitions age past it and are held).
    outage: tuple[float, float] | None = None
    started: float = 0.0

    def run(self, duration_s: float) -> float:
        """Until `duration_s` from the start or the stream's end; how long the stream ran."""
        self.started = time.monotonic()
        next_fault = self.fault_every_s
        next_progress = self.progress_every_s
        next_size = 0.0
        while (elapsed := time.monotonic() - self.started) < duration_s and self.stream.alive:
            self.check_exited(elapsed)
            down = self.deliver_outage(elapsed)
            if elapsed >= next_fault:
                if not down:  # a fault due while the deliver worker is stopped is skipped
                    self.inject(elapsed)
                next_fault += self.fault_every_s
            elif elapsed >= next_progress:
                self.sample(elapsed)
                next_progress += self.progress_every_s
            elif self.history is not None and elapsed >= next_size:
                self.sample_size(self.history, elapsed)
                # One sample, however long a fault held the loop, and the next a full period on
                # (not one at 74 s and the next at 75 s).
                while next_size <= elapsed + self.history.every_s / 2:
                    next_size += self.history.every_s
            time.sleep(0.2)
        stream_s = time.monotonic() - self.started
        if self.outage is not None and "deliver" not in self.rig.pipeline.procs:
            self.deliver_outage(self.outage[0] + self.outage[1])  # the stream ended first
        self.check_exited(stream_s)
        return stream_s

    def deliver_outage(self, elapsed: float) -> bool:
        """Stop the deliver worker when the outage begins, start it again when it ends (noted
        with the faults); whether it is stopped now."""
        if self.outage is None:
            return False
        at_s, for_s = self.outage
        stopped = "deliver" not in self.rig.pipeline.procs
        if at_s <= elapsed < at_s + for_s:
            if not stopped:
                log(f"deliver worker stopped for {for_s:g} s at {elapsed:.0f} s")
                self.rig.pipeline.kill("deliver", signal.SIGTERM)
            return True
        if elapsed >= at_s + for_s and stopped:
            self.rig.pipeline.start("deliver")
            log(f"deliver worker started again at {elapsed:.0f} s")
            self.injected.append(Injected(f"deliver worker stopped ({for_s:g} s)", at_s,
                                          round(elapsed - at_s, 1)))  # fmt: skip
        return False

    def check_exited(self, elapsed: float) -> None:
        self.died += exited(self.rig, elapsed, {d["process"] for d in self.died})

    def inject(self, elapsed: float) -> None:
        name = self.deck.draw()
        log(f"fault {len(self.injected) + 1}: {name} at {elapsed:.0f} s")
        began = time.monotonic()
        FAULTS[name](self.rig)
        self.injected.append(Injected(name, round(elapsed, 1), round(time.monotonic() - began, 1)))

    def sample(self, elapsed: float) -> None:
        rss = self.rig.pipeline.rss_mb()
        for name, mb in rss.items():
            self.rss_peak[name] = max(self.rss_peak.get(name, 0.0), mb)
        sample = {
            "t_s": round(elapsed),
            "events_sent": len(self.stream.sent) * self.events_per_tx,
            "events_received": len(self.arrivals.update()),
            "webhooks_received": len(self.rig.receiver.requests),
            "machine_cpu_pct": psutil.cpu_percent(),
            "cpu_pct": self.cpu.tick(process_ids(self.rig), alone=(SELF,)),
            "rss_mb": {name: round(mb, 1) for name, mb in rss.items()},
        }
        self.progress.append(sample)
        log(f"t={sample['t_s']}s sent={sample['events_sent']} "
            f"received={sample['events_received']} "
            f"behind={sample['events_sent'] - sample['events_received']} "
            f"cpu={sample['machine_cpu_pct']}% {sample['cpu_pct']}")  # fmt: skip

    @staticmethod
    def sample_size(history: HistoryWatch, elapsed: float) -> None:
        size = history.sample(elapsed)
        if size is None:
            log(f"size at {elapsed:.0f} s: the database did not answer ({history.missed[-1]})")
            return
        log(f"size at {size['t_s']} s: database {size['database_mb']} MB, history "
            f"{size['history_mb']} MB in {size['partitions']} partitions "
            f"({size['dropped_so_far']} dropped so far), open deliveries "
            f"{size['open_deliveries']} ({size['open_at_risk']} aging past retention)")  # fmt: skip


def wait_for_retention(
    loop: StreamLoop, history: HistoryWatch, stream_from: datetime, stream_s: float
) -> None:
    """Once everything is delivered, the next retention run (beat's, once an interval) drops a
    partition of the stream's that aged past retention, if none was dropped yet: retention holds
    a partition while a delivery in it is open, and a loaded host can still have had some open
    at the last run before the stream ended. Samples until then, an interval and a margin at
    most; the report says what it found."""
    deadline = time.monotonic() + history.retention.interval_s + RETENTION_MARGIN_S
    while not history.stream_partitions_dropped(stream_from, stream_s):
        if time.monotonic() > deadline:
            return
        time.sleep(RETENTION_SAMPLE_S)
        loop.sample_size(history, time.monotonic() - loop.started)


def soak(
    minutes: float = 10.0,
    rate: float = 300.0,
    events_per_tx: int = 30,
    seed: int | None = None,
    fault_every_s: float = 60.0,
    out: Path | None = None,
    progress_every_s: float = 10.0,
    dispatch_lease_s: float = DISPATCH_LEASE_S,
    retention: Retention | None = None,
    size_every_s: float = 30.0,
    deliver_outage: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Run the soak; the report (also written to `out` as JSON when given). With `retention`,
    the history is partitioned and retention runs (see tests/support/soak_history.py): the
    database's size is sampled every `size_every_s`, and the report says what retention did.
    `deliver_outage` (at s, for s) stops the deliver worker that long (see StreamLoop.outage)."""
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    tx_per_s = rate / events_per_tx
    settings = {"ETHHOOK_DISPATCH_LEASE_S": f"{dispatch_lease_s:g}"}
    settings.update(retention.settings() if retention is not None else {})
    log(f"soak: {minutes:g} min at {rate:g} events/s ({tx_per_s:g} tx/s x {events_per_tx}), "
        f"a fault every {fault_every_s:g} s, seed={seed}, settings {settings}")  # fmt: skip
    rigs = make_rig(settings=settings)
    rig = next(rigs)
    history = None
    try:
        answer_without_nagle(rig)
        restarts_before = Counter(rig.pipeline.restarts)
        stream = TimedStream(rig.node, SameAddresses(rig.token), events_per_tx, tx_per_s)
        if retention is not None:
            history = HistoryWatch(rig.postgres.url, retention, size_every_s)
        loop = StreamLoop(rig, stream, Arrivals(rig.receiver), FaultDeck(random.Random(seed)),
                          events_per_tx, fault_every_s, progress_every_s, history=history,
                          outage=deliver_outage)  # fmt: skip
        loop.cpu.tick(process_ids(rig), alone=(SELF,))
        rss_start = rig.pipeline.rss_mb()
        loop.rss_peak.update(rss_start)
        stream_from = datetime.now(UTC)
        stream.start()
        stream_s = loop.run(minutes * 60)
        stream_alive = stream.alive
        stopped_at = time.time()
        expected = stream.stop()
        log(f"stream stopped after {stream_s:.0f} s: {len(expected)} events in the receipts; "
            "settling")  # fmt: skip
        arrivals = loop.arrivals
        # Waiting here reads each request once; settle() then counts once.
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline and not expected <= arrivals.update().keys():
            time.sleep(1.0)
        outcome = settle(rig.receiver, expected, max(deadline - time.monotonic(), 1.0),
                         f"soak {minutes:g} min at {rate:g} events/s, seed {seed}")  # fmt: skip
        report = counts(stream, arrivals.update(), expected, outcome, loop.injected, stream_s,
                        loop.started)  # fmt: skip
        last = max((arrivals.first[key] for key in expected if key in arrivals.first), default=0.0)
        report["drained_s"] = round(max(last - stopped_at, 0.0), 1)
        report.update(
            minutes=minutes, rate=rate, events_per_tx=events_per_tx, seed=seed,
            fault_every_s=fault_every_s, stream_alive_to_the_end=stream_alive, died=loop.died,
            unrecoverable=unrecoverable(rig),
            rss_start_mb=rounded(rss_start), rss_peak_mb=rounded(loop.rss_peak),
            rss_end_mb=rounded(rig.pipeline.rss_mb()), dispatch_lease_s=dispatch_lease_s,
            restarts=dict(rig.pipeline.restarts - restarts_before),
            progress=loop.progress, logs=str(rig.root),
        )  # fmt: skip
        if history is not None:
            loop.sample_size(history, time.monotonic() - loop.started)
            wait_for_retention(loop, history, stream_from, stream_s)
            report["history"] = history.report(
                set(arrivals.first), stream_from, stream_s, rig.pipeline.log("beat")
            )
    finally:
        if history is not None:
            history.close()
        rigs.close()
    lines = summary_lines(report["history"]) if "history" in report else []
    print("\n".join([summary(report), *lines]), flush=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        log(f"report in {out}")
    return report
