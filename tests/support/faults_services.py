"""Services of their own for fault tests and the soak: a PostgreSQL cluster and a redis-server,
each on a free loopback port, that a test stops and restarts without disturbing anything else."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis as redis_py
from sqlalchemy import create_engine, text

from ethhook.demo.localredis import redis_server_binary
from tests.support.waiting import free_port, wait_until


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
