"""A task's backlog builds bodies a chunk at a time, as the windows reach them."""

from datetime import UTC, datetime

from ethhook.deliver.backlog import LOAD_CHUNK, Backlog
from ethhook.deliver.store import Work

TOTAL = 2 * LOAD_CHUNK + 5  # two whole chunks and a part


class Loader:
    def __init__(self, missing: frozenset[int] = frozenset()) -> None:
        self.calls: list[list[int]] = []
        self.missing = missing

    def __call__(self, ids):
        self.calls.append(list(ids))
        created = datetime(2026, 12, 1, tzinfo=UTC)
        return [Work(i, 0, f"msg_{i}", b"{}", 0, created) for i in ids if i not in self.missing]


def test_only_the_first_chunk_is_loaded_at_the_start():
    load = Loader()
    backlog = Backlog.loading(list(range(1, TOTAL + 1)), load)
    assert load.calls == [list(range(1, LOAD_CHUNK + 1))]
    assert backlog.left() == list(range(1, TOTAL + 1))


def test_a_chunk_is_loaded_when_fewer_bodies_are_ready_than_the_window_needs():
    first, more = Loader(), Loader()
    backlog = Backlog.loading(list(range(1, TOTAL + 1)), first)
    for _ in range(LOAD_CHUNK - 4):
        backlog.pop()
    backlog.top_up(4, more)  # four ready, four needed
    assert more.calls == []
    backlog.top_up(8, more)
    assert more.calls == [list(range(LOAD_CHUNK + 1, 2 * LOAD_CHUNK + 1))]
    assert backlog.left() == list(range(LOAD_CHUNK - 3, TOTAL + 1))


def test_sending_takes_the_work_in_order_until_none_is_left():
    backlog = Backlog.loading([3, 4, 5], Loader())
    assert [backlog.pop().delivery_id for _ in range(3)] == [3, 4, 5]
    assert not backlog.has_loaded() and not backlog and backlog.left() == []


def test_a_delivery_that_no_longer_loads_is_not_left_over():
    backlog = Backlog.loading([1, 2, 3], Loader(missing=frozenset({2})))
    assert backlog.left() == [1, 3]


def test_a_backlog_is_short_of_a_window_only_while_more_is_left_to_load():
    backlog = Backlog.loading(list(range(1, LOAD_CHUNK + 5)), Loader())
    assert not backlog.short_of(8)  # a whole chunk ready
    for _ in range(LOAD_CHUNK - 7):
        backlog.pop()
    assert backlog.short_of(8)  # 7 ready, 4 to load
    backlog.top_up(8, Loader())
    assert not backlog.short_of(8)  # 11 ready, none to load
    for _ in range(10):
        backlog.pop()
    assert not backlog.short_of(8)  # 1 ready, but nothing left to load


def test_a_claim_read_whole_with_its_work_is_sent_once_each_and_loads_nothing_more():
    """An ordered claim reads the work of all it claims, more than a chunk of it: each delivery
    is sent once, in order (with only the first chunk counted as read, the rest were loaded
    again and sent twice)."""
    claimed = list(range(1, TOTAL + 1))
    more = Loader()
    backlog = Backlog.preloaded(claimed, Loader()(claimed), covered=len(claimed))
    sent = []
    while backlog:
        backlog.top_up(8, more)
        sent.append(backlog.pop().delivery_id)
    assert sent == claimed and more.calls == []
