"""Database work a deliver task does beside its requests, so its sending does not stop for it.

Only under the gevent pool, where every greenlet shares one thread and psycopg2 yields while it
waits (psycogreen): the task's next bodies load while a window is sent, and its attempts are
written while it sends the next ones. Elsewhere (threads, the CLI, SQLite) the same jobs run in
line, as they always did: a database connection stays in the thread that opened it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def green() -> bool:
    """True in a process whose sockets gevent patched (a gevent pool worker)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))


class Beside:
    """One job at a time beside the task: started → it runs while the task goes on; the next
    start, or wait(), waits for it first and raises its error, if it had one."""

    def __init__(self) -> None:
        self._job: Any = None  # a gevent Greenlet

    def start(self, job: Callable[[], None]) -> None:
        self.wait()
        if green():
            import gevent

            self._job = gevent.spawn(job)
        else:
            job()

    def wait(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            job.get()  # waits; re-raises the job's exception
