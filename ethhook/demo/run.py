"""`ethhook demo`: a local chain, the whole pipeline, a verifying receiver, live progress, a summary.

Everything lives in one working folder: a SQLite database, a private redis-server on a unix socket
(the broker and the shared rate-limit/breaker state), the key that encrypts the endpoint secrets in
the database, the process logs and beat's schedule file.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ethhook.config import CHAIN_URL_VARIABLES
from ethhook.db.secrets import new_key
from ethhook.demo.api import DemoApi, api_child, api_port, wait_for_health
from ethhook.demo.devchain import DevChain, events_in, free_port
from ethhook.demo.localredis import LocalRedis
from ethhook.demo.receiver import DemoReceiver
from ethhook.exceptions import EthHookError
from ethhook.supervise import Supervisor, ethhook, standard_children

DEMO_CHAIN_ID = 31337
TRANSFER = "Transfer(address indexed from, address indexed to, uint256 value)"
EVENTS_PER_TX = 50
KEY_FILE = "secret.key"


@dataclass
class DemoOptions:
    events: int
    workdir: Path
    keep_running: bool
    timeout_s: float
    # With keep_running, the HTTP API and console listen here if it is free (ETHHOOK_API_PORT).
    api_port: int = 8080


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def _run_cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(ethhook(*args), env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise EthHookError(f"`ethhook {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def run_demo(options: DemoOptions) -> int:
    workdir = options.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # A fresh start: this run's database, beat schedule and logs only.
    for pattern in ("ethhook.db*", "celerybeat-schedule*", "*.log"):
        for stale in workdir.glob(pattern):
            stale.unlink()
    print(f"EthHook demo: working folder {workdir}")
    print("  starting a local chain (anvil), Redis and the receiver …", flush=True)
    chain = DevChain(workdir, DEMO_CHAIN_ID)
    redis = LocalRedis(workdir)
    receiver = DemoReceiver()
    supervisor: Supervisor | None = None
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        (workdir / "chains.toml").write_text(
            f'[[chains]]\nname = "anvil"\nchain_id = {DEMO_CHAIN_ID}\n'
            f'ws_url = "{chain.ws_url}"\nhttp_url = "{chain.http_url}"\npoll_interval_s = 0.5\n'
        )
        metrics_port = free_port()
        env = _demo_env(workdir, redis, metrics_port, _demo_key(workdir))
        _run_cli(env, "db", "upgrade")
        token = chain.deploy_token()
        endpoint = _register_endpoint(env, receiver.url, token)
        receiver.secret = endpoint["secret"]
        print(f"  token {token} deployed; endpoint {endpoint['id']} → {receiver.url}")
        children = standard_children(
            workdir / "celerybeat-schedule",
            deliver_pool=("-P", "threads", "-c", "16"),
            match_pool=("-P", "threads", "-c", "2"),
        )
        api: DemoApi | None = None
        if options.keep_running:
            api = DemoApi(api_port(options.api_port), _api_key(env, endpoint["application_id"]))
            children.append(api_child(api.port))
        supervisor = Supervisor(children, env, log_dir=workdir)
        supervisor.start()
        watcher = threading.Thread(target=supervisor.watch, args=(stop,), daemon=True)
        watcher.start()
        _wait_for_listener(workdir, stop)
        ok = _drive(options, chain, token, receiver, workdir, stop)
        if api is not None and not stop.is_set():
            _keep_running(api, chain, workdir, metrics_port, stop)
        return 0 if ok else 1
    finally:
        stop.set()
        if supervisor is not None:
            supervisor.request_stop()
            supervisor.stop()
        receiver.stop()
        redis.stop()
        chain.stop()


def _demo_key(workdir: Path) -> str:
    """A new key for this run's new database, in the working folder (readable by its owner only)
    for the commands a user runs beside `--keep-running`."""
    key = new_key()
    path = workdir / KEY_FILE
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(key + "\n")
    return key


def _demo_env(
    workdir: Path, redis: LocalRedis, metrics_port: int, secret_key: str
) -> dict[str, str]:
    """The environment of every demo process: SQLite, the private Redis, the demo chain only, and
    endpoint secrets encrypted with the demo's own key."""
    env = {
        **os.environ,
        "ETHHOOK_DATABASE_URL": f"sqlite:///{workdir / 'ethhook.db'}",
        "ETHHOOK_SECRET_KEYS": secret_key,
        "ETHHOOK_BROKER_URL": redis.broker_url,
        "ETHHOOK_REDIS_URL": redis.url,
        "ETHHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "ETHHOOK_CHAINS_FILE": str(workdir / "chains.toml"),
        "ETHHOOK_METRICS_PORT": str(metrics_port),
        "ETHHOOK_WORKER_METRICS_PORT": "0",
        "ETHHOOK_DUE_SCAN_INTERVAL_S": "0.5",
    }
    for var in CHAIN_URL_VARIABLES:
        env.pop(var, None)
    return env


def _register_endpoint(env: dict[str, str], url: str, token: str) -> dict[str, Any]:
    """The demo's endpoint, registered with the real command line."""
    answer = _run_cli(
        env,
        "endpoint",
        "add",
        "--url",
        url,
        "--chain",
        "anvil",
        "--contract",
        token,
        "--event",
        TRANSFER,
        "--name",
        "demo receiver",
        "--json",
    )
    return dict(json.loads(answer))


def _api_key(env: dict[str, str], application_id: int) -> str:
    """A new key for the demo endpoint's application (`default`), made with the command line: the
    console signed in with it shows the demo's endpoint, and only that application's."""
    answer = _run_cli(env, "app", "rotate-key", str(application_id), "--json")
    return str(json.loads(answer)["api_key"])


def _wait_for_listener(workdir: Path, stop: threading.Event) -> None:
    deadline = time.monotonic() + 60
    log = workdir / "listener.log"
    while not stop.is_set():
        if log.exists() and "listen.chain.started" in log.read_text(errors="replace"):
            return
        if time.monotonic() > deadline:
            raise EthHookError(f"the listener did not start in 60 s (see {log})")
        time.sleep(0.2)


def _events_seen(workdir: Path) -> int:
    try:
        with sqlite3.connect(workdir / "ethhook.db", timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.Error:
        return 0


@dataclass
class Emitted:
    """What the chain recorded: when each transaction was sent, and the events in its receipts."""

    sent_at: dict[str, float]  # transaction hash (lower case) → time.time() before sending
    events: int


def emit_events(chain: DevChain, token: str, n: int, stop: threading.Event) -> Emitted:
    """Send transactions emitting n Transfer events back to back, then confirm every one.

    The count is the logs in the receipts, never the calls made: a transaction anvil left
    pending, or one that reverted, emitted nothing a webhook could be sent for.
    """
    sent_at: dict[str, float] = {}
    requested = 0
    while requested < n and not stop.is_set():
        batch = min(EVENTS_PER_TX, n - requested)
        sent = time.time()
        tx = chain.emit_transfers(token, batch, 1_000 + requested)
        sent_at[tx.lower()] = sent
        requested += batch
    # Confirming after the last send keeps the sends back to back; a pending one is nudged.
    return Emitted(sent_at, events_in(chain.confirm_all(list(sent_at))))


def _drive(
    options: DemoOptions,
    chain: DevChain,
    token: str,
    receiver: DemoReceiver,
    workdir: Path,
    stop: threading.Event,
) -> bool:
    """Emit the events, show the progress, print the summary; True when every webhook arrived."""
    n = options.events
    started = time.monotonic()
    print(f"  emitting {n} Transfer events …", flush=True)
    emission = emit_events(chain, token, n, stop)
    sent_at, emitted = emission.sent_at, emission.events
    if emitted != n:
        print(f"  only {emitted} of {n} events are in the mined transactions' receipts")
    _show_progress(receiver, workdir, sent_at, emitted, options.timeout_s, stop)
    elapsed = time.monotonic() - started
    return _summary(receiver, workdir, sent_at, n, emitted, elapsed)


def _keep_running(
    api: DemoApi, chain: DevChain, workdir: Path, metrics_port: int, stop: threading.Event
) -> None:
    """Say where everything is (the console and the API once /health answers), then wait for
    Ctrl-C."""
    if wait_for_health(api.url, stop):
        served = api.hints()
    else:
        served = f"  the HTTP API did not answer {api.url}/health (see {workdir / 'api.log'})"
    print(
        f"\nStill running (Ctrl-C to stop).\n{served}\n"
        f"  chain RPC {chain.http_url}   metrics http://127.0.0.1:{metrics_port}/metrics\n"
        f"Or with the command line, in another shell:\n"
        f"  export ETHHOOK_DATABASE_URL=sqlite:///{workdir / 'ethhook.db'}\n"
        f"  export ETHHOOK_BROKER_URL=redis+socket://{workdir / 'redis.sock'}\n"
        f"  export ETHHOOK_SECRET_KEYS=$(cat {workdir / KEY_FILE})\n"
        f"  ethhook delivery list --limit 5",
        flush=True,
    )
    stop.wait()


def _show_progress(
    receiver: DemoReceiver,
    workdir: Path,
    sent_at: dict[str, float],
    emitted: int,
    timeout_s: float,
    stop: threading.Event,
) -> None:
    """One live line (or a line every 2 s when not on a terminal) until everything arrived."""
    deadline = time.monotonic() + timeout_s
    tty = sys.stdout.isatty()
    line = ""
    while not stop.is_set():
        delivered = receiver.count()
        lat = receiver.latencies_ms(sent_at)
        line = (
            f"  events seen {_events_seen(workdir):>6}/{emitted}"
            f"   webhooks delivered {delivered:>6}/{emitted}"
            f"   latency p50 {_percentile(lat, 50):6.0f} ms  p95 {_percentile(lat, 95):6.0f} ms"
            f"  p99 {_percentile(lat, 99):6.0f} ms"
        )
        print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)
        if delivered >= emitted or time.monotonic() > deadline:
            break
        stop.wait(0.5 if tty else 2.0)
    if tty:
        print()


def _summary(
    receiver: DemoReceiver,
    workdir: Path,
    sent_at: dict[str, float],
    requested: int,
    emitted: int,
    elapsed: float,
) -> bool:
    """Print the summary; True when every emitted event arrived once, verified."""
    delivered = receiver.count()
    lat = receiver.latencies_ms(sent_at)
    ok = (
        emitted == requested
        and delivered == emitted
        and receiver.unverified == 0
        and receiver.duplicates == 0
    )
    print(
        "\nSummary\n"
        f"  events emitted          {emitted} (logs in {len(sent_at)} mined transactions)\n"
        f"  events seen             {_events_seen(workdir)}\n"
        f"  webhooks delivered      {delivered} (every signature verified: "
        f"{'yes' if receiver.unverified == 0 else f'no, {receiver.unverified} failed'})\n"
        f"  duplicates              {receiver.duplicates}\n"
        f"  latency (tx sent → webhook received)  p50 {_percentile(lat, 50):.0f} ms, "
        f"p95 {_percentile(lat, 95):.0f} ms, p99 {_percentile(lat, 99):.0f} ms\n"
        f"  elapsed                 {elapsed:.1f} s ({delivered / elapsed:.0f} webhooks/s)\n"
        f"  result                  {'OK: every webhook arrived and verified' if ok else 'FAILED'}"
    )
    if not ok:
        print(f"  logs: {workdir}/*.log")
    return ok
