"""Blocking work (database, broker) off the event loop, on a daemon thread per chain.

A daemon thread, not the loop's default executor: a call stuck on a dead broker or database must
not keep the process from exiting after SIGTERM.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class BlockingLane:
    """Runs blocking calls one after another on its own daemon thread (so they keep their order)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], asyncio.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
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
            loop = future.get_loop()
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 (handed to the awaiting coroutine)
                _settle(loop, future, None, exc)
            else:
                _settle(loop, future, result, None)

    def close(self) -> None:
        self._jobs.put(None)


def _settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    exc: BaseException | None,
) -> None:
    def settle() -> None:
        if future.done():  # the awaiting coroutine was cancelled
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        return
