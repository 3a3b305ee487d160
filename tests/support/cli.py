"""The real command-line programs: `ethhook` (in this process where the process itself is not
what is tested), `alembic`, and `ethhook up` in the background; and what a refused command must
look like."""

from __future__ import annotations

import io
import logging
import os
import subprocess
from contextlib import redirect_stderr, redirect_stdout

from tests.support.env import BIN, ROOT, TMP

# The commands that only call the service layer and print: run in this process, they cost no
# interpreter start (about a second of CPU each). The others start servers or other programs.
IN_PROCESS = frozenset({"endpoint", "delivery", "app", "stats", "explain", "replay"})
# `db` commands run in this process too, but for `db upgrade` (alembic's env sets logging up).
IN_PROCESS_DB = frozenset({"partitions", "retention", "new-key", "reencrypt"})
# Variables read only through the settings (ethhook.config), which run_cli reads again: a command
# given other values of these runs in this process too. Logging is set up once per process.
SETTINGS_PREFIXES = ("ETHHOOK_", "ETHEREUM_")
PROCESS_WIDE = ("ETHHOOK_LOG",)


def ethhook(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `ethhook` with these arguments: its main(argv) in this process for the commands in
    IN_PROCESS and IN_PROCESS_DB (unless `env` sets more than settings), else the real console
    script."""
    settings_only = all(
        name.startswith(SETTINGS_PREFIXES) and not name.startswith(PROCESS_WIDE)
        for name in env or {}
    )
    in_process = bool(args) and (
        args[0] in IN_PROCESS or (args[0] == "db" and len(args) > 1 and args[1] in IN_PROCESS_DB)
    )
    if in_process and settings_only:
        return run_cli(*args, env=env)
    full_env = os.environ.copy()
    full_env.update(env or {})
    # A bound, not a wait: a command takes ~0.5 s alone, but twice more than 60 s at the suite's
    # peak (load average 20 and more on 2 cores).
    return subprocess.run(
        [str(BIN / "ethhook"), *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`ethhook ARGS` as main(argv) in this process, with what it prints captured, as the console
    script would give it: the exit status, stdout and stderr (a log line of WARNING or above
    included, as Python prints it when nothing configured logging). Settings are read again from
    the environment, with `env` over it, as a new process would; with `env`, the command gets an
    engine of its own, made from those settings and disposed of afterwards."""
    import ethhook.db
    from ethhook.cli import main
    from ethhook.config import get_settings

    out, err = io.StringIO(), io.StringIO()
    last_resort = logging.StreamHandler(err)
    last_resort.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(last_resort)
    overlaid = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    get_settings.cache_clear()
    engine = (ethhook.db._engine, ethhook.db._sessionmaker)
    if env:
        ethhook.db._engine = ethhook.db._sessionmaker = None
    # The command asks for a schema check on its first connection; this process has connected
    # already, so none is made, and none must be left asked for the next engine it makes.
    check_schema = ethhook.db._check_schema
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: --help, or a usage error
                if isinstance(exc.code, str):
                    print(exc.code, file=err)
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        ethhook.db._check_schema = check_schema
        if env:
            if ethhook.db._engine is not None:
                ethhook.db._engine.dispose()
            ethhook.db._engine, ethhook.db._sessionmaker = engine
        for name, value in overlaid.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        root.removeHandler(last_resort)
        get_settings.cache_clear()
    return subprocess.CompletedProcess(["ethhook", *args], code, out.getvalue(), err.getvalue())


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
