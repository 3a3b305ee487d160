"""workqueue.claim_ordered on PostgreSQL: two claims of one ordered endpoint take turns on its
advisory lock (the second, waiting, then finds the first's claim and takes nothing), and a
worker's live claim anywhere among the endpoint's pending rows holds every other claim."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from ethhook.db import session_scope
from ethhook.db.models import Delivery, utcnow
from ethhook.workqueue import claim_ordered
from tests.support.db import add_pending_deliveries
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer
from tests.support.matcher import lock_waiters
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("db")

LEASE_S = 30.0


def ordered_endpoint_with(count: int) -> tuple[int, list[int]]:
    """An --ordered endpoint with `count` pending deliveries numbered 1..count; their ids."""
    endpoint_id = add_endpoint("http://127.0.0.1:9/o", ordered="pause")[0]
    events = [transfer(contract=address(95), block=1, log_index=i, value=i) for i in range(count)]
    with session_scope() as session:
        ids = add_pending_deliveries(session, endpoint_id, events, utcnow())
        for number, delivery_id in enumerate(ids, start=1):
            session.execute(
                update(Delivery).where(Delivery.id == delivery_id).values(sequence=number)
            )
    return endpoint_id, ids


def claim(endpoint_id: int, token: str) -> list[int]:
    with session_scope() as session:
        plan = claim_ordered(session, endpoint_id, "pause", token, utcnow(), LEASE_S, 20)
        return [r.id for r in plan.take]


def test_two_claims_at_once_take_turns_and_the_second_takes_nothing():
    endpoint_id, ids = ordered_endpoint_with(5)
    claimed_a, commit_a = threading.Event(), threading.Event()
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with session_scope() as session:
                plan = claim_ordered(session, endpoint_id, "pause", "a" * 36, utcnow(), LEASE_S, 20)
                got["a"] = [r.id for r in plan.take]
                claimed_a.set()
                assert commit_a.wait(30)
        except BaseException as e:  # reported by the test thread
            errors.append(e)
            claimed_a.set()

    a = threading.Thread(target=first)
    a.start()
    assert claimed_a.wait(30)
    b = threading.Thread(target=lambda: got.__setitem__("b", claim(endpoint_id, "b" * 36)))
    b.start()
    wait_until(lambda: lock_waiters() >= 1, 30, what="the second claim waiting for the first")
    commit_a.set()
    a.join(30)
    b.join(30)
    assert not errors, errors
    assert got == {"a": ids, "b": []}
    with session_scope() as session:
        tokens = set(session.scalars(select(Delivery.lease_token).where(Delivery.id.in_(ids))))
    assert tokens == {"a" * 36}


def test_a_live_claim_past_the_first_rows_holds_a_claim_of_older_ones():
    # Given: a worker holds rows 21..25 (its claim from the head), and a retry made 1..20 pending
    # and due again ahead of them.
    endpoint_id, ids = ordered_endpoint_with(25)
    with session_scope() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids[20:]))
            .values(lease_token="a" * 36, lease_expires_at=utcnow() + timedelta(seconds=LEASE_S))
        )
    # Then: another claim takes none of the older ones while that claim is live.
    assert claim(endpoint_id, "b" * 36) == []
    # And: once it has expired, the claim starts at the head again.
    with session_scope() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids[20:]))
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert claim(endpoint_id, "b" * 36) == ids[:20]
