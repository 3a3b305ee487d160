"""The claim rules on real PostgreSQL: a message's lease can pass to another message, a worker's
claim cannot, and beat leaves expired message leases to a busy queue for a bounded time.

Everything here happens an hour ahead (`moment`), so the session's worker and its beat, which
scan the same tables in real time, never find these deliveries due.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.db.models import Delivery, utcnow
from ethhook.workqueue import (
    claim,
    defer,
    due_deliveries,
    lease_available,
    new_claim_token,
)
from ethhook.workqueue.lease import UNCLAIMED_HOLD_LEASES
from tests.support.db import add_pending_deliveries
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer

pytestmark = pytest.mark.usefixtures("db")

CLAIM_S = 30.0
AHEAD = timedelta(hours=1)


def moment(at_s: float = 0.0) -> datetime:
    return utcnow() + AHEAD + timedelta(seconds=at_s)


def pending(n: int) -> tuple[int, list[int]]:
    """An endpoint and n pending deliveries to it, due at moment(), held by nobody."""
    endpoint_id, _ = add_endpoint("http://127.0.0.1:9/leases")
    now = moment()
    events = [transfer(contract=address(60), block=7, log_index=i, value=i) for i in range(n)]
    with session_scope() as session:
        ids = add_pending_deliveries(session, endpoint_id, events, now)
    return endpoint_id, ids


def due_rows(ids: list[int]) -> list[tuple[int, int, datetime]]:
    """(endpoint_id, delivery_id, event_at), as the due scan finds deliveries."""
    with session_scope() as session:
        found = session.execute(
            select(Delivery.endpoint_id, Delivery.id, Delivery.event_at).where(Delivery.id.in_(ids))
        )
        return [(row[0], row[1], row[2]) for row in found]


def lease_to_message(ids: list[int], endpoint_id: int) -> str:
    """What the matcher or beat does: lease the deliveries to one fresh message token."""
    with session_scope() as session:
        [group] = lease_available(session, due_rows(ids), moment())
    return group.token


def claim_as(endpoint_id: int, ids: list[int], token: str, at_s: float = 0.0) -> list[int]:
    """A deliver task carrying `token` claims, at moment(at_s), for a new worker token."""
    with session_scope() as session:
        return claim(session, endpoint_id, ids, token, new_claim_token(), moment(at_s), CLAIM_S)


def holders(ids: list[int]) -> set[str | None]:
    with session_scope() as session:
        return set(session.scalars(select(Delivery.lease_token).where(Delivery.id.in_(ids))))


def test_a_message_claims_its_deliveries_from_the_message_they_were_leased_to_since():
    endpoint_id, ids = pending(3)
    stale = lease_to_message(ids, endpoint_id)
    with session_scope() as session:  # beat re-leases them once the first lease has expired
        later = moment(get_settings().dispatch_lease_s + 1)
        [newer] = lease_available(session, due_rows(ids), later)

    assert newer.token != stale
    assert claim_as(endpoint_id, ids, stale, at_s=get_settings().dispatch_lease_s + 2) == ids
    assert claim_as(endpoint_id, ids, newer.token, at_s=get_settings().dispatch_lease_s + 2) == []


def test_a_workers_claim_is_exclusive_until_it_expires_then_any_message_may_take_it():
    endpoint_id, ids = pending(3)
    token = lease_to_message(ids, endpoint_id)
    assert claim_as(endpoint_id, ids, token) == ids
    held = holders(ids)

    assert claim_as(endpoint_id, ids, token) == []  # the same message again (a redelivery)
    assert claim_as(endpoint_id, ids, "m-other") == []  # another message naming them
    assert claim_as(endpoint_id, ids, "m-other", at_s=CLAIM_S - 1) == []
    with session_scope() as session:  # nor can beat lease them to a message meanwhile
        assert lease_available(session, due_rows(ids), moment()) == []
    assert holders(ids) == held

    assert claim_as(endpoint_id, ids, "m-other", at_s=CLAIM_S + 1) == ids  # the worker died
    assert holders(ids) != held


def test_two_tasks_claiming_at_once_get_each_delivery_once():
    endpoint_id, ids = pending(20)
    token = lease_to_message(ids, endpoint_id)
    results: dict[str, list[int]] = {}
    first_claimed = threading.Event()

    def second() -> None:
        first_claimed.wait(10)
        results["second"] = claim_as(endpoint_id, ids, "m-duplicate")

    thread = threading.Thread(target=second)
    thread.start()
    with session_scope() as session:  # the first claim's transaction is open while the second runs
        results["first"] = claim(session, endpoint_id, ids, token, new_claim_token(), moment(), 30)
        first_claimed.set()
        thread.join(0.5)
        assert thread.is_alive()  # waiting on the first claim's row locks
    thread.join(10)

    assert results == {"first": ids, "second": []}


def test_a_deferred_delivery_is_taken_by_no_message_before_it_is_due():
    endpoint_id, ids = pending(2)
    stale = lease_to_message(ids, endpoint_id)
    worker = new_claim_token()
    with session_scope() as session:
        now = moment()
        assert claim(session, endpoint_id, ids, stale, worker, now, CLAIM_S) == ids
        requeue = defer(session, endpoint_id, ids, worker, 5.0, now, 4.0)  # rate limited
    assert requeue is not None and requeue.delivery_ids == ids

    assert claim_as(endpoint_id, ids, stale, at_s=4) == []
    assert claim_as(endpoint_id, ids, stale, at_s=6) == ids  # due: the queued copy goes first


def test_the_due_scan_leaves_expired_message_leases_to_a_busy_queue_for_a_bounded_time():
    endpoint_id, ids = pending(3)
    lease_s = get_settings().dispatch_lease_s
    lease_to_message(ids[:1], endpoint_id)  # a message lease, never claimed
    claim_as(endpoint_id, ids[1:2], lease_to_message(ids[1:2], endpoint_id))  # a worker's claim
    # ids[2] is held by nobody (a retry that fell due)

    def due(at_s: float, busy: bool) -> list[int]:
        with session_scope() as session:
            found = due_deliveries(session, moment(at_s), 100, queue_busy=busy)
            return sorted(d for _, d, _ in found)

    assert due(0, busy=False) == ids[2:]
    assert due(lease_s + 1, busy=False) == [ids[0], ids[2]]  # the message may be lost: again
    assert due(lease_s + 1, busy=True) == ids[2:]  # the message is probably still queued
    assert due(CLAIM_S + 1, busy=True) == ids[1:]  # an expired claim: the worker is gone
    hold_over = lease_s * (UNCLAIMED_HOLD_LEASES + 1) + 1
    assert due(hold_over, busy=True) == ids  # held no longer than the bound


def test_the_deliver_tasks_claim_reads_the_endpoint_and_first_chunk_in_one_statement_by_the_same_rule():
    from sqlalchemy import event

    from ethhook.db import get_engine
    from ethhook.deliver.store.claimload import claim_and_load

    endpoint_id, ids = pending(5)
    token = lease_to_message(ids, endpoint_id)
    seen: list[str] = []

    def statement(_conn, _cursor, sql, *_args) -> None:  # noqa: ANN001
        seen.append(sql)

    event.listen(get_engine(), "before_cursor_execute", statement)
    try:
        with session_scope() as session:
            got = claim_and_load(
                session, endpoint_id, ids, token, new_claim_token(), moment(), get_settings(), 3
            )
    finally:
        event.remove(get_engine(), "before_cursor_execute", statement)

    assert len(seen) == 1
    assert got.claimed == ids and got.endpoint is not None and got.endpoint.id == endpoint_id
    assert sorted(w.delivery_id for w in got.first) == ids[:3]
    with session_scope() as session:  # a worker's claim is exclusive: a second message gets none
        again = claim_and_load(
            session, endpoint_id, ids, "m-other", new_claim_token(), moment(), get_settings(), 3
        )
    assert again.claimed == [] and again.first == []
