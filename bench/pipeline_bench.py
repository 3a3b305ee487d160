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
import asyncio
import time
from typing import Any

import bench.common as c

THROUGHPUT_ENDPOINTS = 10


def signed_request(secret: str) -> tuple[bytes, dict[str, str]]:
    from ethhook.deliver.signing import webhook_headers

    body = (
        b'{"type":"event.instant","timestamp":"2026-11-27T00:00:00Z","data":{"event_id":"evt_x",'
        b'"chain_id":1,"chain":"ethereum","block_number":1,"block_hash":"0x' + b"ab" * 32 + b'",'
        b'"block_timestamp":1764192822,"transaction_hash":"0x' + b"cd" * 32 + b'",'
        b'"transaction_index":0,"log_index":0,"address":"0x'
        + b"12" * 20
        + b'","topics":["0x'
        + b"ef" * 32
        + b'"],"data":"0x'
        + b"00" * 32
        + b'","confirmations":0,"removed":false,"decoded":null}}'
    )
    headers = webhook_headers((secret,), "msg_bench", int(time.time()), body, "EthHook/bench")
    headers["content-type"] = "application/json"
    return body, headers


def requests_loop(url: str, secret: str, n: int) -> float:
    """Baseline 1: one thread, one requests.Session, signing each request like a worker does."""
    import requests

    from ethhook.deliver.signing import webhook_headers

    body, _ = signed_request(secret)
    session = requests.Session()
    started = time.perf_counter()
    for i in range(n):
        headers = webhook_headers((secret,), f"msg_{i}", int(time.time()), body, "EthHook/bench")
        headers["content-type"] = "application/json"
        session.post(url, data=body, headers=headers, timeout=10).raise_for_status()
    return n / (time.perf_counter() - started)


def aiohttp_client(url: str, secret: str, n: int, in_flight: int = 100) -> float:
    """Baseline 2: aiohttp with `in_flight` concurrent requests (the machine's ceiling)."""
    import aiohttp

    body, headers = signed_request(secret)

    async def run() -> float:
        connector = aiohttp.TCPConnector(limit=in_flight)
        async with aiohttp.ClientSession(connector=connector) as session:
            left = iter(range(n))

            async def worker() -> None:
                for _ in left:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        response.raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(in_flight)))
            return n / (time.perf_counter() - started)

    return asyncio.run(run())


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
        from tests.e2e.conftest import Anvil, ListenerProcess, Token, anvil_binary
        from tests.factories import TRANSFER
        from tests.integration.helpers import add_endpoint

        self.svc = svc
        self.receiver = c.ReceiverProcess()
        self.started.append(self.receiver)
        self.node = Anvil(anvil_binary(), chain_id=1, name="bench-anvil")
        self.started.append(self.node)
        self.token_a = Token(self.node)
        self.token_b = Token(self.node)
        secrets = {}
        for i in range(THROUGHPUT_ENDPOINTS):
            path = f"/tp/e{i}"
            _, secrets[path] = add_endpoint(
                self.receiver.url(path), contracts=[self.token_a.address], events=[TRANSFER]
            )
        _, secrets["/lat/e0"] = add_endpoint(
            self.receiver.url("/lat/e0"), contracts=[self.token_b.address], events=[TRANSFER]
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
        interval = per_tx / rate
        sent_at: dict[str, float] = {}
        txs = int(seconds / interval)
        t0 = time.time()
        for k in range(txs):
            due = t0 + k * interval
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            at = time.time()
            tx = self.token_b.emit_transfers(per_tx, self.base + k * per_tx, wait=False)
            sent_at[tx.lower()] = at
        self.base += txs * per_tx
        send_s = time.time() - t0
        self.node.confirm_sent()
        expected = txs * per_tx
        deadline = time.time() + 60
        while self.receiver.stats()["count"] < expected and time.time() < deadline:
            time.sleep(0.1)
        drained_after_s = time.time() - t0 - send_s
        arrivals = self.receiver.arrivals()
        lat_ms = [(at - sent_at[tx.lower()]) * 1000 for at, tx in arrivals if tx.lower() in sent_at]
        stages = self.stage_times(sent_at, arrivals)
        return {
            **stages,
            "rate_target": rate,
            "rate_sent": expected / send_s,
            "events": expected,
            "received": len(arrivals),
            "p50_ms": c.percentile(lat_ms, 50),
            "p95_ms": c.percentile(lat_ms, 95),
            "p99_ms": c.percentile(lat_ms, 99),
            "max_ms": max(lat_ms) if lat_ms else float("nan"),
            "drained_after_s": drained_after_s,
        }

    def stage_times(self, sent_at: dict[str, float], arrivals: list[list[Any]]) -> dict[str, float]:
        """Median ms per stage: sent → event stored by the matcher → attempt started → received."""
        from sqlalchemy import select

        from ethhook.db import session_scope
        from ethhook.db.models import Delivery, DeliveryAttempt, Event

        arrived: dict[str, list[float]] = {}
        for at, tx in arrivals:
            arrived.setdefault(tx.lower(), []).append(at)
        to_match, to_attempt, to_receive = [], [], []
        with session_scope() as session:
            rows = session.execute(
                select(Event.transaction_hash, Event.created_at, DeliveryAttempt.started_at)
                .join(Delivery, Delivery.event_id == Event.id)
                .join(DeliveryAttempt, DeliveryAttempt.delivery_id == Delivery.id)
                .where(Event.transaction_hash.in_(list(sent_at)))
            ).all()
        for tx, stored, started in rows:
            sent = sent_at[tx.lower()]
            to_match.append((stored.timestamp() - sent) * 1000)
            to_attempt.append((started.timestamp() - stored.timestamp()) * 1000)
        started_by_tx: dict[str, list[float]] = {}
        for tx, _stored, started in rows:
            started_by_tx.setdefault(tx.lower(), []).append(started.timestamp())
        for tx, times in arrived.items():
            for at, st in zip(sorted(times), sorted(started_by_tx.get(tx, [])), strict=False):
                to_receive.append((at - st) * 1000)
        return {
            "sent_to_stored_ms": c.median(to_match),
            "stored_to_attempt_ms": c.median(to_attempt),
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
