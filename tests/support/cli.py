"""The real command-line programs as subprocesses: `ethhook`, `alembic`, and `ethhook up` in the
background; and what a refused command must look like."""

from __future__ import annotations

import os
import subprocess

from tests.support.env import BIN, ROOT, TMP


def ethhook(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `ethhook` console script."""
    full_env = os.environ.copy()
    full_env.update(env or {})
    return subprocess.run(
        [str(BIN / "ethhook"), *args], capture_output=True, text=True, env=full_env, timeout=60
    )


def assert_refused(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 2, one line of error, no traceback, nothing on stdout; returns the line."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ethhook") and "error:" in lines[0], lines
    assert "Traceback" not in result.stderr and result.stdout == ""
    return lines[0]


def alembic(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ETHHOOK_DATABASE_URL": url}
    return subprocess.run(
        [str(BIN / "alembic"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_up(env: dict[str, str], name: str) -> tuple[subprocess.Popen[bytes], object]:
    """`ethhook up` (threads deliver pool, 8 of them) in TMP/up-<name>, its output to a log file;
    the process and the open log."""
    log = open(TMP / f"up-{name}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(BIN / "ethhook"),
            "up",
            "--workdir",
            str(TMP / f"up-{name}"),
            "--deliver-pool",
            "threads",
            "--deliver-concurrency",
            "8",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, log
