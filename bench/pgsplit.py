"""PostgreSQL's CPU split by the EthHook process each backend serves (its client's TCP port).

A backend of the benchmark's database whose client port belongs to a watched process (or one of
its children) counts for that process; this database's autovacuum workers and other backends
count as such; the server's own processes (WAL writer, checkpointer, background writer,
launchers, the postmaster) as "server"; and every backend or autovacuum worker of another
database (other jobs sharing the server) as OTHER_DATABASES, which is not EthHook's.
"""

from __future__ import annotations

from typing import Any

import psutil

SERVER = "server"
OTHER_DATABASES = "other databases"
THIS_DATABASE = "this database, other clients"


def _owners(pids: dict[str, int]) -> dict[int, str]:
    """pid → name for every watched process and its children."""
    owner: dict[int, str] = {}
    for name, pid in pids.items():
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                owner.setdefault(proc.pid, name)
        except psutil.NoSuchProcess:
            continue
    return owner


def _backend_names(session: Any, pids: dict[str, int]) -> dict[int, str]:
    """Every PostgreSQL process pg_stat_activity lists → the name its CPU counts under."""
    from sqlalchemy import text

    owner = _owners(pids)
    by_port = {
        conn.laddr.port: owner[conn.pid]
        for conn in psutil.net_connections(kind="tcp")
        if conn.pid in owner and conn.laddr
    }
    rows = session.execute(
        text(
            "SELECT pid, datname = current_database(), datname IS NULL, backend_type,"
            " client_port FROM pg_stat_activity"
        )
    ).all()
    names: dict[int, str] = {}
    for pid, ours, shared, backend_type, port in rows:
        if shared:
            names[pid] = SERVER
        elif not ours:
            names[pid] = OTHER_DATABASES
        elif backend_type == "autovacuum worker":
            names[pid] = "autovacuum (this database)"
        else:
            names[pid] = by_port.get(port, THIS_DATABASE)
    return names


def snapshot(postmaster: int, pids: dict[str, int]) -> dict[int, tuple[str, float]]:
    """Each PostgreSQL process's CPU seconds so far, with the name it counts for."""
    from ethhook.db import session_scope

    with session_scope() as session:
        names = _backend_names(session, pids)
    out: dict[int, tuple[str, float]] = {}
    root = psutil.Process(postmaster)
    for proc in [root, *root.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        out[proc.pid] = (names.get(proc.pid, SERVER), t.user + t.system)
    return out


def split(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds between two snapshots by name; a backend is named by its latest snapshot."""
    used: dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        earlier = before.get(pid, (name, 0.0))[1]
        used[name] = used.get(name, 0.0) + max(seconds - earlier, 0.0)
    return used
