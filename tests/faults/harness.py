"""The whole pipeline on private services, for fault tests and the soak: a PostgreSQL cluster and
a redis-server of its own (restarted without disturbing anything else), an anvil chain, the
listener and the match, deliver and beat workers as real processes, a steady stream of events, and
a verifying receiver that counts what arrived and what arrived twice.

Nothing here touches the test session's database or Redis: every process is given the private
services' URLs, and the harness reads the private database with an engine of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis as redis_py
from sqlalchemy import create_engine, text

from ethhook.demo.devchain import confirm_receipts
from ethhook.demo.localredis import redis_server_binary
from tests.conftest import BIN, ROOT, free_port, wait_until
from tests.receiver import Receiver

PATH = "/hooks"


def _as_postgres(args: list[str]) -> list[str]:
    """initdb refuses to run as root: run the cluster's commands as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PrivatePostgres:
    """A PostgreSQL cluster in `root` on a free loopback port (fsync off: tests, not data)."""

    def __init__(self, root: Path) -> None:
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        self.pg_ctl = str(Path(bindir) / "pg_ctl")
        self.dir = root / "pg"
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        self.log = root / "pg.log"
        self.log.touch()
        if os.geteuid() == 0:
            shutil.chown(self.log, "postgres")
        subprocess.run(
            _as_postgres(
                [str(Path(bindir) / "initdb"), "-D", str(self.dir), "-U", "postgres", "-A", "trust"]
            ),
            check=True,
            capture_output=True,
        )
        self.start()
        admin = create_engine(self.url_for("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE ethhook"))
        admin.dispose()

    @property
    def url(self) -> str:
        return self.url_for("ethhook")

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([self.pg_ctl, "-D", str(self.dir), "-w", "-t", "60", *args]),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._ctl("-o", options, "-l", str(self.log), "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")

    def restart(self, down_s: float = 0.0) -> None:
        """Stop (fast: every connection is cut), stay down `down_s`, start again."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            return  # already stopped


class PrivateRedis:
    """A redis-server on a free loopback port; `restart` keeps its data (a dump on shutdown)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "redis"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self) -> redis_py.Redis:
        return redis_py.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=5)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--dbfilename",
                "dump.rdb",
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._up, 15, 0.05, what="the private redis-server")

    def _up(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis_py.RedisError:
            return False

    def flushall(self) -> None:
        self.client().flushall()

    def restart(self, down_s: float = 0.0) -> None:
        """Shut down saving its data, stay down `down_s`, start again with the same data."""
        try:
            self.client().shutdown(save=True)
        except redis_py.ConnectionError:
            pass  # the server closes the connection as it goes
        assert self.proc is not None
        self.proc.wait(15)
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


# The processes of one pipeline: name → command line. Beat runs in the maintenance worker.
COMMANDS: dict[str, list[str]] = {
    "listener": [str(BIN / "ethhook"), "listen"],
    "match": [
        str(BIN / "celery"), "-A", "ethhook.celery_app", "worker", "-Q", "match",
        "-P", "prefork", "-c", "2", "-n", "match@%h", "--without-mingle", "--without-gossip",
        "-l", "INFO",
    ],
    "deliver": [
        str(BIN / "celery"), "-A", "ethhook.celery_app", "worker", "-Q", "deliver",
        "-P", "gevent", "-c", "50", "-n", "deliver@%h", "--without-mingle", "--without-gossip",
        "-l", "INFO",
    ],
    "beat": [
        str(BIN / "celery"), "-A", "ethhook.celery_app", "worker", "-Q", "maintenance",
        "-c", "1", "-n", "maintenance@%h", "--without-mingle", "--without-gossip", "-B",
        "-l", "INFO",
    ],
}  # fmt: skip


class Pipeline:
    """Listener, match, deliver and beat on the given services, each a process of its own."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: Counter[str] = Counter()

    def log_path(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def log(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def ethhook(self, *args: str) -> str:
        """The real `ethhook` command on this pipeline's services; its stdout."""
        result = subprocess.run(
            [str(BIN / "ethhook"), *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self, *names: str) -> None:
        for name in names or tuple(COMMANDS):
            args = list(COMMANDS[name])
            if name == "beat":
                args += ["-s", str(self.root / "celerybeat-schedule")]
            with open(self.log_path(name), "ab") as log:
                self.procs[name] = subprocess.Popen(
                    args,
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        for name in names or tuple(COMMANDS):
            if name != "listener":
                wait_until(lambda n=name: self._ready(n), 60, 0.2, what=f"the {name} worker")

    def _ready(self, name: str) -> bool:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited: {self.log(name)[-3000:]}")
        return self.log(name).count("ready.") > self.restarts[name]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the process and everything it started (a worker's pool, beat), and wait."""
        proc = self.procs.pop(name)
        self.restarts[name] += 1
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of each process with its children (a worker's pool)."""
        sizes = {}
        for name, proc in self.procs.items():
            try:
                root = psutil.Process(proc.pid)
                tree = [root, *root.children(recursive=True)]
                sizes[name] = sum(p.memory_info().rss for p in tree) / 2**20
            except psutil.NoSuchProcess:
                continue
        return sizes

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)


@dataclass
class Stream:
    """Sends `emitTransfers` transactions at a steady rate until stopped; every one is confirmed
    and counted from its receipt."""

    node: Any  # tests.e2e.conftest.Anvil
    token: Any  # tests.e2e.conftest.Token
    events_per_tx: int = 10
    tx_per_s: float = 2.0
    sent: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Stream:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        base = 1_000_000 * (len(self.sent) + 1)
        interval = 1.0 / self.tx_per_s
        next_at = time.monotonic()
        while not self._stop.is_set():
            data = self.token.emit_tx_data(self.events_per_tx, base + len(self.sent) * 1000)
            tx = {"from": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "to": self.token.address,
                  "data": data, "gas": hex(8_000_000)}  # fmt: skip
            self.sent.append(self.node.rpc("eth_sendTransaction", tx))
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def wait_and_stop(self, seconds: float) -> set[tuple[str, int]]:
        time.sleep(seconds)
        return self.stop()

    def stop(self) -> set[tuple[str, int]]:
        """Stop sending; (transaction hash, log index) of every event in the mined receipts."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        receipts = confirm_receipts(self.node.rpc, self.sent)
        return {
            (r["transactionHash"].lower(), int(log["logIndex"], 16))
            for r in receipts
            for log in r["logs"]
        }


@dataclass
class Outcome:
    expected: int
    received: int
    lost: int
    repeated_ids: int
    unverified: int

    def __str__(self) -> str:
        return (
            f"expected={self.expected} received={self.received} lost={self.lost} "
            f"repeated_ids={self.repeated_ids} unverified={self.unverified}"
        )


def complete(request: Any) -> bool:
    """The whole body arrived (a deliver worker killed mid-send leaves a truncated request,
    which no receiver would accept: it is neither a delivery nor a signature failure)."""
    return len(request.body) == int(request.headers.get("content-length", -1))


def arrived(receiver: Receiver, path: str = PATH) -> set[tuple[str, int]]:
    """(transaction hash, log index) of every event that arrived verified at `path`."""
    keys = set()
    for request in receiver.on(path):
        if request.verified and request.status == 200:
            data = request.json["data"]
            keys.add((data["transaction_hash"].lower(), int(data["log_index"])))
    return keys


def settle(
    receiver: Receiver,
    expected: Iterable[tuple[str, int]],
    timeout_s: float,
    fault: str,
    path: str = PATH,
    linger_s: float = 1.0,
) -> Outcome:
    """Wait until every expected event arrived (or the timeout), then count, over these events
    only: what was lost, and how many webhook-ids arrived more than once (`linger_s` after the
    last one arrived: a delivery whose worker died is sent again when its lease expires). The
    outcome is printed
    and, when ETHHOOK_FAULT_REPORT names a file, appended to it as one JSON line."""
    wanted = set(expected)
    started = time.monotonic()
    deadline = started + timeout_s
    while time.monotonic() < deadline and not wanted <= arrived(receiver, path):
        time.sleep(0.25)
    recovered_s = time.monotonic() - started
    time.sleep(linger_s)  # anything still in flight (or due again) lands in the counts
    ours = [
        r
        for r in receiver.on(path)
        if r.status == 200
        and r.verified
        and (r.json["data"]["transaction_hash"].lower(), int(r.json["data"]["log_index"])) in wanted
    ]
    per_id = Counter(r.webhook_id for r in ours)
    outcome = Outcome(
        expected=len(wanted),
        received=len(per_id),
        lost=len(wanted - arrived(receiver, path)),
        repeated_ids=sum(1 for n in per_id.values() if n > 1),
        unverified=sum(1 for r in receiver.on(path) if r.verified is False and complete(r)),
    )
    print(f"FAULT {fault}: {outcome} settled_s={recovered_s:.1f}")
    report = os.environ.get("ETHHOOK_FAULT_REPORT")
    if report:
        with open(report, "a") as out:
            out.write(json.dumps({"fault": fault, **outcome.__dict__,
                                  "settled_s": round(recovered_s, 1)}) + "\n")  # fmt: skip
    return outcome


def register_endpoint(pipeline: Pipeline, receiver: Receiver, contract: str) -> int:
    """One endpoint on the token's Transfers, instant, registered with the real CLI."""
    answer = json.loads(
        pipeline.ethhook(
            "endpoint", "add", "--url", receiver.url(PATH), "--contract", contract,
            "--event", "Transfer(address indexed from, address indexed to, uint256 value)",
            "--json",
        )
    )  # fmt: skip
    receiver.secrets[PATH] = answer["secret"]
    return int(answer["id"])


def pipeline_env(database_url: str, redis_url: str, node: Any, broker_url: str = "") -> dict:
    """Settings for every process of a fault-test pipeline: short leases so that recovery is
    quick, the node's URLs, private targets allowed (the receiver is on loopback)."""
    return {
        "ETHHOOK_DATABASE_URL": database_url,
        "ETHHOOK_BROKER_URL": broker_url or f"{redis_url}/0",
        "ETHHOOK_REDIS_URL": f"{redis_url}/1",
        "ETHHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "ETHHOOK_DISPATCH_LEASE_S": "5",
        "ETHHOOK_DELIVERY_LEASE_S": "20",
        "ETHHOOK_DUE_SCAN_INTERVAL_S": "0.5",
        "ETHHOOK_DELIVERY_CONNECT_TIMEOUT_S": "2",
        "ETHHOOK_DELIVERY_READ_TIMEOUT_S": "3",
        "ETHHOOK_METRICS_PORT": "0",
        "ETHHOOK_WORKER_METRICS_PORT": "0",
        "ETHEREUM_WS": node.ws_url,
        "ETHEREUM_HTTP": node.http_url,
    }


class _SendClock:
    """A node whose `eth_sendTransaction` calls note when each transaction was sent."""

    def __init__(self, node: Any, sent_at: dict[str, float]) -> None:
        self.node = node
        self.sent_at = sent_at

    def rpc(self, method: str, *params: Any) -> Any:
        at = time.time()
        result = self.node.rpc(method, *params)
        if method == "eth_sendTransaction":
            self.sent_at[result.lower()] = at
        return result


@dataclass
class TimedStream(Stream):
    """A Stream that also keeps when each transaction was sent (wall clock, like `Received.at`;
    anvil mines a transaction as it arrives), for latencies from sent to webhook received."""

    sent_at: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.node = _SendClock(self.node, self.sent_at)

    @property
    def alive(self) -> bool:
        """Still sending (a failed `eth_sendTransaction` ends the thread)."""
        return self._thread is not None and self._thread.is_alive()


class Arrivals:
    """When the first verified webhook of each event arrived, read incrementally from a receiver
    (each request parsed once: the soak's receiver holds hundreds of thousands)."""

    def __init__(self, receiver: Receiver, path: str = PATH) -> None:
        self.receiver = receiver
        self.path = path
        self.first: dict[tuple[str, int], float] = {}
        self._read = 0

    def update(self) -> dict[tuple[str, int], float]:
        """(transaction hash, log index) → arrival of its first verified webhook, so far."""
        for request in self.receiver.requests[self._read :]:
            if request.status is None:
                break  # still being answered: read again next time
            self._read += 1
            if request.path == self.path and request.verified and request.status == 200:
                data = request.json["data"]
                key = (data["transaction_hash"].lower(), int(data["log_index"]))
                self.first[key] = min(self.first.get(key, request.at), request.at)
        return self.first
