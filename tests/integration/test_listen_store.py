"""The listener's store against PostgreSQL: a block's events, blocks and cursor in one short
transaction, the recent blocks kept and trimmed, the chain lock."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import event, select

from ethhook.db import get_engine, session_scope
from ethhook.db.models import ChainBlock, ChainCursor
from ethhook.db.partition_plan import event_time
from ethhook.db.partitions import ensure_partitions
from ethhook.listen.records import BlockHeader
from ethhook.listen.reorg import KEEP_BLOCKS, TRIM_EVERY
from ethhook.listen.store import ChainLock, load_state, rewind, save_range
from ethhook.types import ChainEvent
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, h32, transfer

pytestmark = pytest.mark.usefixtures("db")

TOKEN = address(41)


def header(n: int, fork: str = "a") -> BlockHeader:
    return BlockHeader(n, h32(fork, n), h32(fork, n - 1), 1000 + n)


def in_block(head: BlockHeader, count: int) -> list[ChainEvent]:
    return [
        replace(
            transfer(contract=TOKEN, block=head.number, log_index=i, value=i), block_hash=head.hash
        )
        for i in range(count)
    ]


class Statements:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        self.seen.append(statement.split(None, 1)[0].upper())


def statements_of(fn, *args) -> list[str]:  # noqa: ANN001
    recorder = Statements()
    engine = get_engine()
    event.listen(engine, "before_cursor_execute", recorder)
    try:
        fn(*args)
    finally:
        event.remove(engine, "before_cursor_execute", recorder)
    return recorder.seen


def stored_blocks() -> dict[int, str]:
    with session_scope() as session:
        return dict(session.execute(select(ChainBlock.block_number, ChainBlock.block_hash)).all())


def test_a_block_with_events_is_four_statements_and_moves_the_cursor():
    # Given a cursor at block 9, and the events' partition made (an earlier write's, or beat's)
    add_endpoint("http://127.0.0.1:1/a", contracts=[TOKEN])
    save_range(1, [header(9)], [])
    head = header(10)
    events = in_block(head, 20)
    ensure_partitions(get_engine(), {event_time(e.block_timestamp) for e in events})
    # When block 10 is saved with 20 events
    seen = statements_of(save_range, 1, [head], events)
    # Then: the events, the stale check, the block, the cursor (then COMMIT, not a statement here)
    assert seen == ["INSERT", "SELECT", "INSERT", "INSERT"]
    assert load_state(1).cursor == (10, head.hash)
    assert stored_blocks() == {9: header(9).hash, 10: head.hash}
    with session_scope() as session:
        cursor = session.get(ChainCursor, 1)
        assert cursor is not None and cursor.head_number == 10


def test_saving_the_same_block_again_overwrites_it():
    save_range(1, [header(5)], [])
    save_range(1, [header(5, "b")], [])
    assert stored_blocks() == {5: header(5, "b").hash}
    assert load_state(1).cursor == (5, header(5, "b").hash)


def test_blocks_older_than_the_kept_ones_are_deleted_once_every_trim_interval():
    # Given blocks saved one at a time far past KEEP_BLOCKS
    last = KEEP_BLOCKS + 3 * TRIM_EVERY
    for n in range(1, last + 1):
        seen = statements_of(save_range, 1, [header(n)], [])
        # Then a DELETE runs only at multiples of TRIM_EVERY
        assert ("DELETE" in seen) == (n % TRIM_EVERY == 0)
    kept = stored_blocks()
    assert max(kept) == last
    assert min(kept) > last - KEEP_BLOCKS - TRIM_EVERY
    assert all(n in kept for n in range(last - KEEP_BLOCKS + 1, last + 1))
    state = load_state(1)
    assert state.cursor == (last, header(last).hash)
    assert sorted(state.blocks) == list(range(last - KEEP_BLOCKS + 1, last + 1))


def test_a_rewind_then_a_save_leaves_only_the_new_branch():
    for n in range(1, 6):
        save_range(1, [header(n)], [])
    rewind(1, header(3), [header(4).hash, header(5).hash])
    save_range(1, [header(4, "b")], [])
    assert stored_blocks() == {
        1: header(1).hash,
        2: header(2).hash,
        3: header(3).hash,
        4: header(4, "b").hash,
    }
    assert load_state(1).cursor == (4, header(4, "b").hash)


def test_the_chain_lock_is_checked_in_one_statement_and_held_against_a_second_listener():
    mine, other = ChainLock(7), ChainLock(7)
    try:
        assert mine.hold() and mine.just_taken
        assert statements_of(mine.hold) == ["SELECT"]
        assert not mine.just_taken
        assert not other.hold()
        mine.release()
        assert other.hold()
    finally:
        mine.release()
        other.release()
