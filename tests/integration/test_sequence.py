"""Per-endpoint sequence numbers on PostgreSQL: concurrent matcher transactions on one endpoint
take turns (no gap, no repeat), and a transaction that rolls back gives its numbers back."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from sqlalchemy import select

from ethhook.db import session_scope
from ethhook.db.models import ChainCursor, Delivery, Endpoint, EventKind, utcnow
from ethhook.maintenance.jobs import release_confirmed
from ethhook.match.service import match_stored
from ethhook.workqueue import orphan_blocks
from tests.support.db import store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, h32, transfer
from tests.support.matcher import MatchOnThread, later, lock_waiters, stored_batch
from tests.support.waiting import wait_until

CONTRACT = address(77)


def sequences(endpoint_id: int, event_ids: Sequence[str] | None = None) -> list[int | None]:
    with session_scope() as session:
        query = select(Delivery.sequence).where(Delivery.endpoint_id == endpoint_id)
        if event_ids is not None:
            query = query.where(Delivery.event_id.in_(event_ids))
        return sorted(session.scalars(query), key=lambda s: (s is None, s or 0))


@pytest.mark.usefixtures("db")
def test_two_matcher_transactions_on_one_endpoint_take_turns_with_no_gap_or_repeat():
    first, second = add_endpoint("http://127.0.0.1:1/a")[0], add_endpoint("http://127.0.0.1:1/b")[0]
    batch_a, batch_b = stored_batch(CONTRACT, 1, 50), stored_batch(CONTRACT, 2, 40)
    a = MatchOnThread(batch_a, hold=True)
    b = MatchOnThread(batch_b)
    # B waits for A's lock on the endpoints' counters: the two are concurrent, not one after
    # the other.
    wait_until(lambda: lock_waiters() >= 1, 30, what="the second matcher waiting for the first")
    a.commit()
    a.join()
    b.join()
    for endpoint_id in (first, second):
        assert sequences(endpoint_id) == list(range(1, 91))
        assert sequences(endpoint_id, batch_a) == list(range(1, 51))  # A numbered first
        assert sequences(endpoint_id, batch_b) == list(range(51, 91))
    with session_scope() as session:
        counters = session.scalars(select(Endpoint.last_sequence).order_by(Endpoint.id)).all()
    assert counters == [90, 90]


@pytest.mark.usefixtures("db")
def test_a_matcher_transaction_that_rolls_back_leaves_no_gap():
    endpoint_id = add_endpoint("http://127.0.0.1:1/a")[0]
    batch_a, batch_b = stored_batch(CONTRACT, 1, 30), stored_batch(CONTRACT, 2, 20)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), session_scope() as session:
        claimed, _ = match_stored(session, batch_a, "test", later())
        assert claimed == 30
        raise Abort  # the database failed after the deliveries were numbered
    with session_scope() as session:
        match_stored(session, batch_b, "test", later())
    assert sequences(endpoint_id) == list(range(1, 21))
    # The rolled-back batch is matched again (its events were left unmatched): it goes on
    # from 21.
    with session_scope() as session:
        claimed, _ = match_stored(session, batch_a, "test", later())
    assert claimed == 30
    assert sequences(endpoint_id, batch_a) == list(range(21, 51))
    assert sequences(endpoint_id) == list(range(1, 51))


@pytest.mark.usefixtures("db")
def test_many_concurrent_batches_over_shared_endpoints_never_deadlock_nor_repeat():
    endpoints = [add_endpoint(f"http://127.0.0.1:1/{i}")[0] for i in range(4)]
    batches = [stored_batch(CONTRACT, 10 + i, 25) for i in range(6)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(batches))

    def match(ids: list[str]) -> None:
        try:
            start.wait(30)
            with session_scope() as session:
                match_stored(session, ids, "test", later())
        except BaseException as e:  # reported by the test thread below
            errors.append(e)

    threads = [threading.Thread(target=match, args=(ids,)) for ids in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for endpoint_id in endpoints:
        assert sequences(endpoint_id) == list(range(1, 151))
        # Each batch took one run of numbers.
        for ids in batches:
            numbers = sequences(endpoint_id, ids)
            assert numbers == list(range(numbers[0], numbers[0] + 25))


@pytest.mark.usefixtures("db", "without_session_worker")
def test_a_removed_event_takes_its_own_number_and_a_confirmed_one_is_numbered_when_released():
    instant = add_endpoint("http://127.0.0.1:1/instant")[0]
    confirmed = add_endpoint("http://127.0.0.1:1/confirmed", confirmations=2)[0]
    events = [transfer(contract=CONTRACT, block=b, log_index=0, value=b) for b in (1, 2, 3)]
    with session_scope() as session:
        store_and_match(session, events, utcnow())
    assert sequences(instant) == [1, 2, 3]
    assert sequences(confirmed) == [None, None, None]  # waiting: no number yet
    # Block 3 is reorged out: the instant endpoint is told, under a number of its own; the
    # confirmed one's waiting delivery is cancelled and never takes one.
    with session_scope() as session:
        orphan_blocks(session, 1, [events[2].block_hash])
        session.add(
            ChainCursor(chain_id=1, block_number=10, block_hash=h32("b", 10), head_number=10)
        )
    with session_scope() as session:
        removed = session.scalars(
            select(Delivery.sequence).where(Delivery.kind == EventKind.REMOVED)
        ).all()
    assert removed == [4]
    with session_scope() as session:
        assert release_confirmed(session, utcnow()) == 2
    assert sequences(confirmed) == [1, 2, None]
