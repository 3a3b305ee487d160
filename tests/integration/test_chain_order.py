"""An ordered endpoint's sequence numbers follow the chain's order, whichever of two batches the
matcher finishes first (workqueue.chainorder); an unordered endpoint's are not held for it.
PostgreSQL, the matcher's and beat's own functions, transactions on threads where the order of
commits is the point."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import select, update

from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.db.models import (
    ChainCursor,
    Delivery,
    DeliveryStatus,
    Endpoint,
    Event,
    EventKind,
    utcnow,
)
from ethhook.maintenance.jobs import release_confirmed
from ethhook.maintenance.tasks import dispatch_due
from ethhook.match.service import match_stored
from ethhook.service.explain import explain_transaction
from ethhook.service.scope import OPERATOR
from ethhook.workqueue import orphan_blocks
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, h32
from tests.support.matcher import MatchOnThread, later, lock_waiters, stored_batch
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("db", "redis_server", "without_session_worker")

TOKEN = address(78)
OTHER = address(79)


def match(ids: list[str]) -> list[int]:
    """Match one batch in its own transaction; the endpoints it dispatched deliveries to."""
    with session_scope() as session:
        _, groups = match_stored(session, ids, "test", later())
    return sorted({g.endpoint_id for g in groups})


def numbers(endpoint_id: int, event_ids: Sequence[str], kind: str = EventKind.INSTANT) -> list:
    """The sequence numbers of the endpoint's deliveries of these events, in the events' order."""
    with session_scope() as session:
        found = dict(
            session.execute(
                select(Delivery.event_id, Delivery.sequence).where(
                    Delivery.endpoint_id == endpoint_id,
                    Delivery.event_id.in_(event_ids),
                    Delivery.kind == kind,
                )
            ).all()
        )
    return [found.get(event_id) for event_id in event_ids]


def reason_for(event_id: str, endpoint_id: int) -> str | None:
    """`ethhook explain`'s reason for the event's transaction and the endpoint."""
    with session_scope() as session:
        tx = session.scalar(select(Event.transaction_hash).where(Event.id == event_id))
        found = explain_transaction(session, get_settings(), "ethereum", tx, scope=OPERATOR)
    (log,) = [log for log in found.logs if log.event_id == event_id]
    (verdict,) = [e for e in log.endpoints if e.endpoint_id == endpoint_id]
    return verdict.reason


def statuses(endpoint_id: int) -> set[str]:
    with session_scope() as session:
        return set(
            session.scalars(select(Delivery.status).where(Delivery.endpoint_id == endpoint_id))
        )


def test_a_later_batch_matched_first_is_held_then_numbered_after_the_earlier_one():
    ordered = add_endpoint("http://127.0.0.1:1/ordered", ordered="pause")[0]
    parallel = add_endpoint("http://127.0.0.1:1/parallel")[0]
    early, late = stored_batch(TOKEN, 1, 30), stored_batch(TOKEN, 2, 20)

    # The later block first: the ordered endpoint's deliveries wait, unnumbered and not sent;
    # the unordered endpoint's go at once, numbered as they are matched.
    assert match(late) == [parallel]
    assert numbers(ordered, late) == [None] * 20
    assert statuses(ordered) == {DeliveryStatus.WAITING}
    assert numbers(parallel, late) == list(range(1, 21))
    assert reason_for(late[0], ordered) == (
        "ordered: held until the matcher has every earlier event of the chain, so that its "
        "sequence number follows the chain's order (an earlier batch of blocks is being matched)"
    )

    # The earlier block's matcher releases both, in the chain's order, to one message.
    assert match(early) == [ordered, parallel]
    assert numbers(ordered, early + late) == list(range(1, 51))
    assert statuses(ordered) == {DeliveryStatus.PENDING}
    assert numbers(parallel, early) == list(range(21, 51))


def test_the_second_of_two_concurrent_matchers_releases_what_the_first_held():
    ordered = add_endpoint("http://127.0.0.1:1/ordered", ordered="skip-dead")[0]
    early, late = stored_batch(TOKEN, 5, 25), stored_batch(TOKEN, 6, 25)
    # The later batch matched and released what it could (nothing), not committed.
    first = MatchOnThread(late, hold=True)
    second = MatchOnThread(early)
    # The earlier batch's matcher waits for the later one's turn at its chain's releases.
    wait_until(lambda: lock_waiters() >= 1, 30, what="the second matcher waiting for the first")
    first.commit()
    first.join()
    second.join()
    assert numbers(ordered, early + late) == list(range(1, 51))
    assert statuses(ordered) == {DeliveryStatus.PENDING}


def test_beat_releases_what_a_matcher_with_nothing_held_of_its_own_could_not_see():
    ordered = add_endpoint("http://127.0.0.1:1/ordered", ordered="pause", contracts=[TOKEN])[0]
    early, late = stored_batch(OTHER, 7, 10), stored_batch(TOKEN, 8, 10)
    held_open = MatchOnThread(late, hold=True)
    # The earlier batch makes nothing for the endpoint and sees no held delivery (the later
    # batch's are not committed): it commits without releasing them.
    assert match(early) == []
    held_open.commit()
    held_open.join()
    assert numbers(ordered, late) == [None] * 10
    # Beat's due scan releases them (its deliver task goes to the broker).
    assert dispatch_due() >= 1
    assert numbers(ordered, late) == list(range(1, 11))
    assert statuses(ordered) == {DeliveryStatus.PENDING}


def test_a_disabled_endpoint_keeps_its_held_deliveries_as_backlog_in_the_chains_order():
    ordered = add_endpoint("http://127.0.0.1:1/ordered", ordered="pause")[0]
    with session_scope() as session:
        session.execute(update(Endpoint).where(Endpoint.id == ordered).values(active=False))
    early, late = stored_batch(TOKEN, 3, 5), stored_batch(TOKEN, 4, 5)
    assert match(late) == []
    assert match(early) == []  # released into the backlog: numbered, not due, not leased
    assert numbers(ordered, early + late) == list(range(1, 11))
    with session_scope() as session:
        rows = session.execute(
            select(Delivery.status, Delivery.next_attempt_at, Delivery.lease_token).where(
                Delivery.endpoint_id == ordered
            )
        ).all()
    assert set(rows) == {(DeliveryStatus.PENDING, None, None)}


def test_an_event_reorged_out_while_held_is_told_removed_after_its_instant_webhook():
    ordered = add_endpoint("http://127.0.0.1:1/ordered", ordered="pause", lifecycle=True)[0]
    early, late = stored_batch(TOKEN, 10, 3), stored_batch(TOKEN, 11, 2)
    match(late)
    with session_scope() as session:  # block 11 is reorged out before block 10 is matched
        orphan_blocks(session, 1, [h32("block", 1, 11)])
    with session_scope() as session:  # told, but held with the rest
        removals = session.execute(
            select(Delivery.status, Delivery.sequence).where(Delivery.kind == EventKind.REMOVED)
        ).all()
    assert removals == [(DeliveryStatus.WAITING, None)] * 2
    match(early)
    # Block 10, then block 11's two instant webhooks, each followed by its removal.
    assert numbers(ordered, early) == [1, 2, 3]
    assert numbers(ordered, late) == [4, 6]
    assert numbers(ordered, late, EventKind.REMOVED) == [5, 7]


def test_a_confirmed_delivery_is_not_released_before_an_earlier_event_is_matched():
    ordered = add_endpoint("http://127.0.0.1:1/ordered", ordered="pause", confirmations=2)[0]
    early, late = stored_batch(TOKEN, 20, 4), stored_batch(TOKEN, 21, 4)
    match(late)
    with session_scope() as session:
        session.add(
            ChainCursor(chain_id=1, block_number=30, block_hash=h32("b", 30), head_number=30)
        )
    with session_scope() as session:  # deep enough, but block 20 waits for the matcher
        assert release_confirmed(session, utcnow()) == 0
    match(early)
    with session_scope() as session:
        assert release_confirmed(session, utcnow()) == 8
    assert numbers(ordered, early + late, EventKind.CONFIRMED) == list(range(1, 9))
