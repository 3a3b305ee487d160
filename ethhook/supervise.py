"""Run several processes together (`ethhook up`, `ethhook demo`): restart the ones that die, stop
them all cleanly on SIGTERM/SIGINT, and leave no process behind."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ethhook.config import get_settings

log = logging.getLogger(__name__)

RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
STOP_TIMEOUT_S = 20.0


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)  # on top of the supervisor's environment
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0
    log_file: IO[bytes] | None = field(default=None, repr=False)


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "ethhook.celery_app", *args]


def worker(*args: str) -> list[str]:
    """`ethhook-worker ARGS` (= `celery -A ethhook.celery_app worker ARGS`, lighter)."""
    return [sys.executable, "-m", "ethhook.worker_main", *args]


def ethhook(*args: str) -> list[str]:
    return [sys.executable, "-m", "ethhook.cli", *args]


def standard_children(
    schedule_file: Path, deliver_pool: Sequence[str], match_pool: Sequence[str] = ("-c", "2")
) -> list[Child]:
    """The listener, a match+maintenance worker, a deliver worker and beat."""
    level = ("-l", get_settings().log_level)  # what every EthHook process logs at
    common = ("--without-mingle", "--without-gossip", *level)
    return [
        Child("listener", ethhook("listen")),
        Child(
            "match",
            worker("-Q", "match,maintenance", *match_pool, "-n", "match@%h", *common),
        ),
        Child("deliver", worker("-Q", "deliver", *deliver_pool, "-n", "deliver@%h", *common)),
        Child("beat", celery("beat", "-s", str(schedule_file), *level)),
    ]


class Supervisor:
    """Start children in their own process groups; restart any that exits while running."""

    def __init__(
        self, children: Sequence[Child], env: Mapping[str, str], log_dir: Path | None = None
    ) -> None:
        self.children = list(children)
        self.env = dict(env)
        self.log_dir = log_dir
        self._stop = threading.Event()

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)

    def _spawn(self, child: Child) -> None:
        if self.log_dir is not None:
            if child.log_file is None:
                child.log_file = open(self.log_dir / f"{child.name}.log", "ab")  # noqa: SIM115
            out: IO[bytes] | None = child.log_file
        else:
            out = None
        # Its own session: a terminal's Ctrl-C reaches only us, and we stop the whole group.
        child.proc = subprocess.Popen(
            child.args,
            env={**self.env, **child.env},
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
        child.started_at = time.monotonic()
        log.info("up.child.started name=%s pid=%s", child.name, child.proc.pid)

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def watch(self, until: threading.Event | None = None, poll_s: float = 0.5) -> None:
        """Restart children that exit, until stop is requested (or `until` is set)."""
        while not self._stop.is_set() and not (until is not None and until.is_set()):
            now = time.monotonic()
            for child in self.children:
                if child.proc is None or child.proc.poll() is None:
                    continue
                if child.next_start == 0.0:
                    if now - child.started_at > 60:
                        child.restarts = 0  # it ran a good while: start the backoff again
                    delay = RESTART_BACKOFF_S[min(child.restarts, len(RESTART_BACKOFF_S) - 1)]
                    child.next_start = now + delay
                    log.warning(
                        "up.child.exited name=%s code=%s restart_in_s=%g",
                        child.name,
                        child.proc.returncode,
                        delay,
                    )
                elif now >= child.next_start:
                    child.restarts += 1
                    child.next_start = 0.0
                    self._spawn(child)
            self._stop.wait(poll_s)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM every child's group; SIGKILL what is still there after the timeout."""
        running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for child in running:
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("up.child.killed name=%s (did not stop in %gs)", child.name, timeout_s)
        for child in self.children:
            # The group too: a prefork worker's pool processes, anything a child started.
            _signal_group(child, signal.SIGKILL)
            if child.proc is not None and child.proc.poll() is None:
                child.proc.wait(5)
            if child.log_file is not None:
                child.log_file.close()
                child.log_file = None


def _signal_group(child: Child, sig: int) -> None:
    if child.proc is None:
        return
    try:
        os.killpg(child.proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        return


def run_until_signalled(supervisor: Supervisor) -> int:
    """Install SIGTERM/SIGINT handlers, supervise until one arrives, stop everything; exit code 0."""
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    supervisor.start()
    try:
        supervisor.watch()
    finally:
        supervisor.stop()
    return 0
