"""Slow start is a pure policy: the window after each window, and the memory between tasks."""

import pytest

from ethhook.deliver.protect.window import (
    REMEMBERED_ENDPOINTS,
    WINDOW_MEMORY_S,
    WindowMemory,
    first_window,
    next_window,
)

OK, FAIL = True, False


@pytest.mark.parametrize(
    ("size", "answers", "max_window", "expected"),
    [
        (1, [OK], 8, 2),
        (2, [OK, OK], 8, 4),
        (4, [OK] * 4, 8, 8),
        (8, [OK] * 8, 8, 8),  # never past the cap
        (5, [OK] * 5, 8, 8),
        (1, [OK], 1, 1),  # a cap of one: no window at all
        (1, [FAIL], 8, 1),
        (8, [OK] * 7 + [FAIL], 8, 1),  # any failure: back to one
        (4, [FAIL, OK, OK, OK], 8, 1),
        (2, [], 8, 4),  # rate limited at its first request: sent nothing, counts as all-2xx
    ],
)
def test_next_window(size, answers, max_window, expected):
    assert next_window(size, answers, max_window) == expected


@pytest.mark.parametrize(
    ("remembered", "max_window", "expected"),
    [(1, 8, 1), (4, 8, 4), (8, 8, 8), (8, 4, 4), (16, 8, 8)],
)
def test_first_window_is_the_remembered_one_within_the_cap(remembered, max_window, expected):
    assert first_window(remembered, max_window) == expected


def test_twenty_deliveries_with_the_eighth_failing_go_out_in_these_windows():
    answers = [FAIL if i == 7 else OK for i in range(20)]
    size, sizes, sent = 1, [], 0
    while sent < len(answers):
        window = answers[sent : sent + size]
        sizes.append(len(window))
        sent += len(window)
        size = next_window(size, window, 8)
    assert sizes == [1, 2, 4, 8, 1, 2, 2]
    assert size == 8  # the next task of this endpoint starts here


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("ended_with", "idle_s", "expected"),
    [
        (8, 0.0, 8),
        (8, WINDOW_MEMORY_S - 0.01, 8),
        (8, WINDOW_MEMORY_S, 1),  # idle for the memory's span: slow start again
        (8, 3600.0, 1),
        (1, 0.0, 1),
        (4, 5.0, 4),
    ],
)
def test_the_next_task_starts_with_the_window_the_last_one_ended_with(ended_with, idle_s, expected):
    clock = Clock()
    memory = WindowMemory(clock)
    memory.end(7, ended_with)
    clock.now += idle_s
    assert memory.start(7) == expected


def test_an_endpoint_never_seen_starts_at_one_and_endpoints_do_not_share_a_window():
    memory = WindowMemory(Clock())
    assert memory.start(1) == 1
    memory.end(1, 8)
    assert (memory.start(1), memory.start(2)) == (8, 1)


def test_the_memory_is_bounded_and_starts_over_when_full():
    memory = WindowMemory(Clock())
    for endpoint_id in range(REMEMBERED_ENDPOINTS + 1):
        memory.end(endpoint_id, 4)
    assert memory.start(0) == 4
    memory.end(REMEMBERED_ENDPOINTS + 1, 8)  # one more than it keeps: forgets the others
    assert (memory.start(0), memory.start(REMEMBERED_ENDPOINTS + 1)) == (1, 8)
