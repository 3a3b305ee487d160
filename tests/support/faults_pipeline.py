"""The whole pipeline as processes of their own for fault tests and the soak: the listener and the
match, deliver and beat workers on the given services, each killed and started again at will.

Nothing here touches the test session's database or Redis: every process is given the private
services' URLs (`pipeline_env`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from tests.support.env import BIN, ROOT
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until

PATH = "/hooks"


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
        # A bound, not a wait (as tests.support.cli's): ~1 s alone, over 60 s at the suite's peak.
        result = subprocess.run(
            [str(BIN / "ethhook"), *args], env=self.env, capture_output=True, text=True, timeout=120
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
