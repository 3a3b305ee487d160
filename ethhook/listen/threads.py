"""Blocking work (database, broker) off the event loop, on a daemon thread per chain.

A daemon thread, not the loop's default executor: a call stuck on a dead broker or database must
not keep the process from exiting after SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

_Job = tuple[Callable[[], Any], "asyncio.Future[Any] | None"]


class BlockingLane:
    """Runs blocking calls one after another on its own daemon thread (so they keep their order)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((lambda: fn(*args), future))
        return await future

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, future = job
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 (handed to the awaiting coroutine)
                if future is None:
                    log.warning("listen.lane.cleanup_failed error=%r", exc)
                else:
                    _settle(future, None, exc)
            else:
                if future is not None:
                    _settle(future, result, None)

    def close(self, last: Callable[[], Any] | None = None) -> None:
        """End the thread after the jobs already queued (and `last`, when given)."""
        if last is not None:
            self._jobs.put((last, None))
        self._jobs.put(None)


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    def settle() -> None:
        if future.done():  # the awaiting coroutine was cancelled
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    try:
        future.get_loop().call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        return
