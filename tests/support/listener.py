"""`ethhook listen` as a real subprocess on the test's chains, and the cursors it saves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from ethhook.config import BUILTIN_CHAINS
from tests.support.env import BIN, ROOT, TMP
from tests.support.waiting import wait_until


class ListenerProcess:
    """`ethhook listen` as a subprocess with its own chain URLs; output to a log file."""

    count = 0

    def __init__(
        self,
        chains: dict[str, str],
        extra_env: dict[str, str] | None = None,
        launcher: list[str] | None = None,
    ) -> None:
        ListenerProcess.count += 1
        self.log_path = TMP / f"listener-{ListenerProcess.count}.log"
        self.env = os.environ.copy()
        self.env.update({"ETHHOOK_METRICS_PORT": "0", "PYTHONUNBUFFERED": "1"})
        self.env.update(chains)
        self.chains = dict(chains)
        self.env.update(extra_env or {})
        self.args = launcher or [str(BIN / "ethhook"), "listen"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_started(self, *chain_ids: int, timeout: float = 90) -> None:
        """Until the listener saved a cursor for every chain (it reads every block after it);
        by default the built-in chains whose URLs it was given. The timeout is a bound, not a
        wait: a listener starts in 2 s alone, and had written nothing after 30 s at the suite's
        busiest minutes."""
        if not chain_ids:
            chain_ids = tuple(
                sorted(
                    {
                        BUILTIN_CHAINS[var.split("_")[0].lower()]
                        for var in self.chains
                        if var.split("_")[0].lower() in BUILTIN_CHAINS
                    }
                )
            )
            assert chain_ids, "name the chain ids to wait for"
        wait_until(
            lambda: self._alive() and all(cursor_of(c) is not None for c in chain_ids),
            timeout,
            0.1,
            what=f"listener to start (log: {self.log_path})",
        )

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"listener exited {self.proc.returncode}: {self.log()[-3000:]}")
        return True

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, and the exit status. The timeout is a bound: a listener exits in 0.4–0.6 s
        after a node outage alone, and took more than 10 s with 20–30 processes runnable on the
        machine's 2 cores (it had logged listen.stopped 3 ms after the signal)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.kill()


def cursor_of(chain_id: int) -> int | None:
    from ethhook.db import session_scope
    from ethhook.db.models import ChainCursor

    with session_scope() as session:
        row = session.get(ChainCursor, chain_id)
        return None if row is None else row.block_number


def python_launcher(**constants: Any) -> list[str]:
    """Run the listener with some module constants changed (short timeouts in fault tests)."""
    lines = ["import sys", "from ethhook.cli import main"]
    for dotted, value in constants.items():
        module, name = dotted.rsplit(".", 1)
        lines.append(f"import {module}; {module}.{name} = {value!r}")
    lines.append("sys.exit(main(['listen']))")
    return [sys.executable, "-c", "; ".join(lines)]


def wait_for_cursor(chain_id: int, at_least: int, timeout: float = 60) -> None:
    wait_until(
        lambda: (cursor_of(chain_id) or -1) >= at_least,
        timeout,
        0.1,
        what=f"cursor of chain {chain_id} to reach {at_least}",
    )
