"""The end-to-end pipeline the benchmark drives: anvil, listener, workers, receiver, and its runs."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

import psutil

import bench.common as c
from bench import pgsplit
from tests.support.meters import CpuMeter

THROUGHPUT_ENDPOINTS = 10
FLOOR_ADDRESS = "0x00000000000000000000000000000000000f100a"
SELF = "this benchmark (sender)"  # its children are the processes measured on their own


def _postmaster_pid() -> int | None:
    """The PostgreSQL server the benchmark's database lives on (its backends are children)."""
    for proc in psutil.process_iter(["name", "ppid"]):
        if proc.info["name"] in ("postgres", "postmaster"):
            try:
                parent = psutil.Process(proc.info["ppid"]).name()
            except psutil.NoSuchProcess:
                continue
            if parent not in ("postgres", "postmaster"):
                return int(proc.pid)
    return None


class Pipeline:
    """Everything the end-to-end measurements need, started once, stopped by pid."""

    def __init__(self, svc: c.Services, deliver_workers: int = 1) -> None:
        self.started: list[Any] = []
        self.rss = c.RssSampler()
        try:
            self._start(svc, deliver_workers)
        except BaseException:
            self.close()  # stop what did start (by pid) before passing the error on
            raise

    def _start(self, svc: c.Services, deliver_workers: int) -> None:
        from ethhook.deliver.signing import generate_secret
        from ethhook.demo.devchain import anvil_binary
        from tests.support.chain import Anvil, Token
        from tests.support.endpoints import add_endpoint
        from tests.support.factories import TRANSFER
        from tests.support.listener import ListenerProcess

        self.svc = svc
        self.receiver = c.ReceiverProcess()
        self.started.append(self.receiver)
        self.node = Anvil(anvil_binary(), chain_id=1, name="bench-anvil")
        self.started.append(self.node)
        self.token_a = Token(self.node)
        self.token_b = Token(self.node)
        self.token_c = Token(self.node)
        secrets = {}
        for i in range(THROUGHPUT_ENDPOINTS):
            path = f"/tp/e{i}"
            _, secrets[path] = add_endpoint(
                self.receiver.url(path), contracts=[self.token_a.address], events=[TRANSFER]
            )
        _, secrets["/lat/e0"] = add_endpoint(
            self.receiver.url("/lat/e0"), contracts=[self.token_b.address], events=[TRANSFER]
        )
        _, secrets["/lat/burst"] = add_endpoint(
            self.receiver.url("/lat/burst"), contracts=[self.token_c.address], events=[TRANSFER]
        )
        # The baselines' signing secret: no endpoint (one without filters would get every event).
        self.base_secret = secrets["/base"] = generate_secret()
        self.receiver.configure(secrets)
        self.match = c.start_worker("match", "match", "prefork", 2)
        self.started.append(self.match)
        self.rss.watch("match worker", self.match.proc.pid)
        self.delivers: list[Any] = []
        self.start_delivers(deliver_workers)
        self.listener = ListenerProcess(
            {"ETHEREUM_WS": self.node.ws_url, "ETHEREUM_HTTP": self.node.http_url}
        )
        self.started.append(self.listener)
        self.listener.wait_started(1)
        assert self.listener.proc is not None
        self.rss.watch("listener", self.listener.proc.pid)
        self.base = 1_000_000
        # A first event end to end: every process has connected and imported everything.
        self.token_b.emit_transfers(1, 1)
        c.wait_until(lambda: self.receiver.stats()["count"] >= 1, 60, 0.1, "warm-up webhook")
        time.sleep(1)

    def start_delivers(self, k: int) -> None:
        for i in range(k):
            w = c.start_worker(f"deliver{i}", "deliver", "gevent", c.DELIVER_CONCURRENCY)
            self.delivers.append(w)
            self.started.append(w)
            self.rss.watch(f"deliver worker {i}", w.proc.pid)

    def stop_delivers(self) -> None:
        for w in self.delivers:
            w.stop()
            self.rss.pids.pop(f"deliver worker {self.delivers.index(w)}", None)
            self.started.remove(w)
        self.delivers = []

    def diagnose(self) -> None:
        """After a failure: what arrived, and the end of every process's log."""
        try:
            c.log(f"receiver stats: {self.receiver.stats()}")
        except Exception as exc:  # noqa: BLE001 (diagnostics only)
            c.log(f"receiver stats unavailable: {exc}")
        for thing in self.started:
            path = getattr(thing, "log_path", None)
            if path is not None and path.exists():
                tail = "\n".join(path.read_text(errors="replace").splitlines()[-25:])
                c.log(f"--- {path.name} ---\n{tail}")

    def close(self) -> None:
        self.rss.stop()
        for thing in reversed(self.started):
            if hasattr(thing, "stop"):
                thing.stop()

    # --- where the CPU goes -----------------------------------------------------------------------

    def cpu_pids(self) -> dict[str, int]:
        """Every process a run keeps busy, by name (each counted with its children but this one)."""
        assert self.node.proc is not None and self.svc.redis is not None
        pids = dict(self.rss.pids)
        pids["anvil"] = self.node.proc.pid
        pids["receiver"] = self.receiver.proc.pid
        pids["redis"] = self.svc.redis.proc.pid
        pids[SELF] = os.getpid()
        postmaster = _postmaster_pid()
        if postmaster is not None:
            pids["postgresql"] = postmaster
        return pids

    def cpu_meter(self) -> tuple[CpuMeter, dict[str, int]]:
        meter, pids = CpuMeter(), self.cpu_pids()
        meter.tick(pids, alone=(SELF,))
        return meter, pids

    # --- measurements ---------------------------------------------------------------------------

    def throughput_run(self, events: int, per_tx: int = 40) -> dict[str, float]:
        self.receiver.reset()
        txs = max(1, events // per_tx)
        expected = txs * per_tx * THROUGHPUT_ENDPOINTS
        started = time.time()
        for k in range(txs):
            self.token_a.emit_transfers(per_tx, self.base + k * per_tx, wait=False)
        self.base += txs * per_tx
        self.node.confirm_sent()  # every one mined (anvil can leave one pending)
        mined = time.time()
        c.wait_until(
            lambda: self.receiver.stats()["count"] >= expected,
            max(120, expected / 100),
            0.1,
            f"{expected} webhooks",
        )
        time.sleep(0.5)
        s = self.receiver.stats()
        return {
            "webhooks": s["count"],
            "distinct": s["distinct"],
            "bad_signatures": s["bad_signatures"],
            "seconds": s["last"] - started,
            "mining_s": mined - started,
            "webhooks_per_s": expected / (s["last"] - started),
            "first_webhook_after_s": s["first"] - started,
        }

    def latency_run(self, rate: float, seconds: float, per_tx: int = 20) -> dict[str, Any]:
        """Send `rate` events/s on token B for `seconds`, `per_tx` events a transaction."""
        self.receiver.reset()
        meter, pids = self.cpu_meter()
        sent_at, started, finished = self.send_paced(rate, seconds, per_tx)
        send_s = finished - started
        expected = len(sent_at) * per_tx
        drained_after_s = self.wait_received(expected, finished)
        cpu = meter.tick(pids, alone=(SELF,))
        return {
            **self.delays(sent_at),
            "cpu_percent": cpu,
            "rate_target": rate,
            "rate_sent": expected / send_s,
            "events": expected,
            "drained_after_s": drained_after_s,
        }

    def send_paced(
        self, rate: float, seconds: float, per_tx: int
    ) -> tuple[dict[str, float], float, float]:
        """`rate` events/s on token B for `seconds`, `per_tx` a transaction; returns when each
        transaction was sent (by hash), and when the sending started and ended."""
        interval = per_tx / rate
        sent_at: dict[str, float] = {}
        txs = int(seconds / interval)
        t0 = time.time()
        for k in range(txs):
            delay = t0 + k * interval - time.time()
            if delay > 0:
                time.sleep(delay)
            at = time.time()
            tx = self.token_b.emit_transfers(per_tx, self.base + k * per_tx, wait=False)
            sent_at[tx.lower()] = at
        self.base += txs * per_tx
        finished = time.time()
        self.node.confirm_sent()
        return sent_at, t0, finished

    def wait_received(self, expected: int, sent_until: float, timeout_s: float = 60) -> float:
        """Wait (at most `timeout_s`) for `expected` webhooks; returns how long after
        `sent_until`, the end of the sending, they were all in."""
        deadline = time.time() + timeout_s
        while self.receiver.stats()["count"] < expected and time.time() < deadline:
            time.sleep(0.1)
        return time.time() - sent_until

    def chain_floor(self, count: int = 30) -> dict[str, float]:
        """The latency no listener can beat, at rest: a transaction sent → its receipt served by
        the node (polled every millisecond). Plain value transfers: no endpoint watches them."""
        delays = []
        for _ in range(count):
            at = time.time()
            tx = self.node.send(FLOOR_ADDRESS, "0x", wait=False)
            deadline = at + 5
            while self.node.rpc("eth_getTransactionReceipt", tx) is None and time.time() < deadline:
                time.sleep(0.001)
            delays.append((time.time() - at) * 1000)
            time.sleep(0.02)
        self.node.confirm_sent()
        return {"p50_ms": c.percentile(delays, 50), "p95_ms": c.percentile(delays, 95)}

    def burst_run(self, events: int, per_tx: int = 100) -> dict[str, Any]:
        """One endpoint (token C's Transfers) gets `events` sent as back-to-back transactions of
        `per_tx`: webhooks/s from the first transaction sent to the last webhook received, and
        each webhook's delay after its own transaction was sent."""
        self.receiver.reset()
        meter, pids = self.cpu_meter()
        postmaster = pids.get("postgresql")
        pg_before = pgsplit.snapshot(postmaster, pids) if postmaster else {}
        txs = max(1, events // per_tx)
        sent_at: dict[str, float] = {}
        started = time.time()
        for k in range(txs):
            at = time.time()
            tx = self.token_c.emit_transfers(per_tx, self.base + k * per_tx, wait=False)
            sent_at[tx.lower()] = at
        self.base += txs * per_tx
        self.node.confirm_sent()
        mined = time.time()
        expected = txs * per_tx
        c.wait_until(
            lambda: self.receiver.stats()["count"] >= expected, 120, 0.1, f"{expected} webhooks"
        )
        ticked = meter.at
        cpu = meter.tick(pids, alone=(SELF,))
        cpu_s = meter.at - ticked
        pg_used = pgsplit.split(pg_before, pgsplit.snapshot(postmaster, pids)) if postmaster else {}
        time.sleep(0.3)
        s = self.receiver.stats()
        return {
            **self.delays(sent_at),
            "cpu_percent": cpu,
            "cpu_ms_per_webhook": {
                k: pct / 100 * cpu_s * 1000 / expected for k, pct in cpu.items()
            },
            # PostgreSQL's share by the process its backends serve (bench/pgsplit.py).
            "postgresql_ms_per_webhook": {k: v * 1000 / expected for k, v in pg_used.items()},
            "webhooks": s["count"],
            "distinct": s["distinct"],
            "bad_signatures": s["bad_signatures"],
            "mining_s": mined - started,
            "webhooks_per_s": expected / (s["last"] - started),
        }

    def delays(self, sent_at: dict[str, float]) -> dict[str, float]:
        """Percentiles of transaction sent → webhook received, and the median of each stage."""
        arrivals = self.receiver.arrivals()
        lat_ms = [
            (at - sent_at[tx.lower()]) * 1000 for at, tx, _ in arrivals if tx.lower() in sent_at
        ]
        return {
            **self.stage_times(sent_at, arrivals),
            "received": len(arrivals),
            **c.delay_spread(lat_ms),
        }

    def stage_times(self, sent_at: dict[str, float], arrivals: list[list[Any]]) -> dict[str, float]:
        """Median ms per stage: sent → event stored by the listener → its match task started →
        attempt started → received."""
        from sqlalchemy import select

        from ethhook.db import session_scope
        from ethhook.db.models import Delivery, DeliveryAttempt, Event

        arrived: dict[str, list[float]] = {}
        for at, tx, _path in arrivals:
            arrived.setdefault(tx.lower(), []).append(at)
        to_match, to_matcher, to_attempt, to_receive = [], [], [], []
        # Joined on the partition key and bounded by the run's time (block times are anvil's
        # clock, this machine's): the rows are read from this run's partitions only, not
        # looked up in every partition of a database with history.
        since = datetime.fromtimestamp(min(sent_at.values(), default=time.time()) - 60, UTC)
        with session_scope() as session:
            rows = session.execute(
                select(
                    Event.transaction_hash,
                    Event.created_at,
                    Delivery.created_at,
                    DeliveryAttempt.started_at,
                )
                .join(
                    Delivery,
                    (Delivery.event_id == Event.id) & (Delivery.event_at == Event.event_at),
                )
                .join(
                    DeliveryAttempt,
                    (DeliveryAttempt.delivery_id == Delivery.id)
                    & (DeliveryAttempt.event_at == Delivery.event_at),
                )
                .where(Event.transaction_hash.in_(list(sent_at)), Event.event_at >= since)
            ).all()
        for tx, stored, matching, started in rows:
            sent = sent_at[tx.lower()]
            to_match.append((stored.timestamp() - sent) * 1000)
            to_matcher.append((matching.timestamp() - stored.timestamp()) * 1000)
            to_attempt.append((started.timestamp() - matching.timestamp()) * 1000)
        started_by_tx: dict[str, list[float]] = {}
        for tx, _stored, _matching, started in rows:
            started_by_tx.setdefault(tx.lower(), []).append(started.timestamp())
        for tx, times in arrived.items():
            for at, st in zip(sorted(times), sorted(started_by_tx.get(tx, [])), strict=False):
                to_receive.append((at - st) * 1000)
        return {
            "sent_to_stored_ms": c.median(to_match),
            "stored_to_matching_ms": c.median(to_matcher),
            "matching_to_attempt_ms": c.median(to_attempt),
            "attempt_to_received_ms": c.median(to_receive),
        }

    def preload(self, events: int, per_tx: int = 40) -> int:
        """Mine events with no deliver worker running; wait until every delivery is pending."""
        from sqlalchemy import func, select

        from ethhook.db import session_scope
        from ethhook.db.models import Delivery, DeliveryStatus

        def pending() -> int:
            with session_scope() as session:
                return int(
                    session.scalar(
                        select(func.count())
                        .select_from(Delivery)
                        .where(Delivery.status == DeliveryStatus.PENDING)
                    )
                    or 0
                )

        before = pending()
        txs = max(1, events // per_tx)
        for k in range(txs):
            self.token_a.emit_transfers(per_tx, self.base + k * per_tx, wait=False)
        self.base += txs * per_tx
        self.node.confirm_sent()
        want = before + txs * per_tx * THROUGHPUT_ENDPOINTS
        c.wait_until(lambda: pending() >= want, 180, 0.2, f"{want} pending deliveries")
        return txs * per_tx * THROUGHPUT_ENDPOINTS

    def drain_run(self, k: int, events: int) -> dict[str, float]:
        """Preload the deliver queue, then start k deliver workers and time the drain."""
        self.stop_delivers()
        expected = self.preload(events)
        self.receiver.reset()
        started = time.time()
        self.start_delivers(k)
        ready = time.time()
        c.wait_until(
            lambda: self.receiver.stats()["count"] >= expected, 300, 0.1, f"{expected} drained"
        )
        time.sleep(0.3)
        s = self.receiver.stats()
        return {
            "workers": k,
            "webhooks": s["count"],
            "distinct": s["distinct"],
            "startup_s": ready - started,
            "webhooks_per_s": (expected - 1) / (s["last"] - s["first"]),
        }
