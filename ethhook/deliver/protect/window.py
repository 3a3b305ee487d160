"""Slow start: how many requests a deliver task has in flight at once, remembered per endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

WINDOW_MEMORY_S = 10.0
REMEMBERED_ENDPOINTS = 10_000


def first_window(remembered: int, max_window: int) -> int:
    """The window a task starts with: what the endpoint's last task ended with, within the cap."""
    return min(remembered, max_window)


def next_window(size: int, answers_ok: Iterable[bool], max_window: int) -> int:
    """The window after one of `size`: doubled (up to the cap) when every answer was 2xx, else one.

    A failing endpoint therefore gets one request at a time per task, as if there were no window.
    A window that sent nothing (rate limited at its first request) counts as all-2xx.
    """
    return min(size * 2, max_window) if all(answers_ok) else 1


class WindowMemory:
    """The window each endpoint's last task in this process ended with; the next task starts there.

    As TCP does after an idle period, a window unused for WINDOW_MEMORY_S starts again from one.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[int, tuple[int, float]] = {}

    def start(self, endpoint_id: int) -> int:
        size, at = self._last.get(endpoint_id, (1, 0.0))
        return size if self._clock() - at < WINDOW_MEMORY_S else 1

    def end(self, endpoint_id: int, size: int) -> None:
        if len(self._last) > REMEMBERED_ENDPOINTS:
            self._last.clear()
        self._last[endpoint_id] = (size, self._clock())


windows = WindowMemory()
