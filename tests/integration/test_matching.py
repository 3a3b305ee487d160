"""The matcher: one endpoint query per batch, idempotent storage, per-endpoint delivery messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.signals import before_task_publish
from sqlalchemy import event, func, select

from ethhook.config import get_settings
from ethhook.db import get_engine, session_scope
from ethhook.db.models import Delivery, Event, utcnow
from ethhook.match.service import match_stored
from ethhook.match.tasks import match_events
from ethhook.workqueue import store_events
from tests.support.db import store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import APPROVAL_TOPIC, TRANSFER, address, transfer


class SelectCounter:
    def __init__(self) -> None:
        self.selects = 0

    def __call__(self, conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT"):
            self.selects += 1


def count_selects(events) -> int:  # noqa: ANN001
    """SELECTs of one matcher message carrying every one of these stored events."""
    with session_scope() as session:
        store_events(session, events, utcnow())
    # Past the listener's leases, so that one message may claim the whole lot.
    later = utcnow() + timedelta(seconds=2 * get_settings().dispatch_lease_s)
    counter = SelectCounter()
    engine = get_engine()
    event.listen(engine, "before_cursor_execute", counter)
    try:
        with session_scope() as session:
            claimed, _ = match_stored(session, [e.event_id for e in events], "none", later)
    finally:
        event.remove(engine, "before_cursor_execute", counter)
    assert claimed == len(events)
    return counter.selects


# The endpoint query, and the look for deliveries held for their chain's order (none here:
# workqueue.chainorder), whatever the batch's size.
MATCH_SELECTS = 2


def selects_for_1_and_500_events(contracts: list[str]) -> tuple[int, int]:
    """The SELECTs the match stage runs for a batch of one Transfer of contracts[0], then for a
    batch of 500 Transfers spread over the 50 contracts."""
    one = [transfer(contract=contracts[0], block=1, log_index=0, value=1)]
    many = [
        transfer(contract=contracts[i % 50], block=2 + i // 100, log_index=i % 100, value=i)
        for i in range(500)
    ]
    return count_selects(one), count_selects(many)


@pytest.mark.usefixtures("db")
def test_one_event_and_500_events_issue_the_same_number_of_selects():
    contracts = [address(100 + i) for i in range(50)]
    for i, contract in enumerate(contracts):
        add_endpoint(f"http://127.0.0.1:1/{i}", contracts=[contract], events=[TRANSFER])
    add_endpoint("http://127.0.0.1:1/all")
    selects_one, selects_many = selects_for_1_and_500_events(contracts)
    assert selects_one == selects_many == MATCH_SELECTS
    with session_scope() as session:
        # Every event matched its contract's endpoint and the catch-all one.
        assert session.scalar(select(func.count()).select_from(Delivery)) == 2 * 501


@pytest.mark.usefixtures("db")
def test_conditions_keep_one_select_per_batch():
    contracts = [address(100 + i) for i in range(50)]
    for i, contract in enumerate(contracts):
        # Keyed on the recipient (an indexed equality), with a condition checked after the query.
        add_endpoint(
            f"http://127.0.0.1:1/{i}",
            contracts=[contract],
            events=[TRANSFER],
            where=[f"to == {address(2)}", "value >= 100"],
        )
    add_endpoint("http://127.0.0.1:1/odd", events=[TRANSFER], where=["value in (1, 3, 5)"])
    selects_one, selects_many = selects_for_1_and_500_events(contracts)
    assert selects_one == selects_many == MATCH_SELECTS
    with session_scope() as session:
        # Events 100..499 reach their contract's endpoint; the first event and 3 and 5 of the
        # 500 reach the `in` one.
        assert session.scalar(select(func.count()).select_from(Delivery)) == 400 + 1 + 3


@pytest.mark.usefixtures("db")
def test_a_replayed_batch_creates_nothing_twice():
    contract = address(7)
    add_endpoint("http://127.0.0.1:1/a", contracts=[contract])
    events = [transfer(contract=contract, block=1, log_index=i, value=i) for i in range(20)]
    with session_scope() as session:
        first = store_and_match(session, events, utcnow())
    with session_scope() as session:
        second = store_and_match(session, events, utcnow())
    assert sum(len(g.delivery_ids) for g in first) == 20
    assert second == []
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 20
        assert session.scalar(select(func.count()).select_from(Delivery)) == 20


@pytest.mark.usefixtures("db")
def test_filters_on_chain_contract_and_event_each_narrow_the_match():
    c1, c2 = address(1), address(2)
    ep_chain = add_endpoint("http://127.0.0.1:1/chain10", chains=["optimism"])[0]
    ep_contract = add_endpoint("http://127.0.0.1:1/c1", contracts=[c1])[0]
    ep_event = add_endpoint("http://127.0.0.1:1/approval", events=[APPROVAL_TOPIC])[0]
    ep_all = add_endpoint("http://127.0.0.1:1/all")[0]
    events = [
        transfer(chain_id=1, contract=c1, block=1, log_index=0, value=1),
        transfer(chain_id=10, contract=c2, block=1, log_index=1, value=1),
        transfer(chain_id=1, contract=c2, block=1, log_index=2, value=1, topic0=APPROVAL_TOPIC),
    ]
    with session_scope() as session:
        store_and_match(session, events, utcnow())
        pairs = set(session.execute(select(Delivery.endpoint_id, Delivery.event_id)).all())
    e0, e1, e2 = (e.event_id for e in events)
    assert pairs == {
        (ep_contract, e0),
        (ep_all, e0),
        (ep_chain, e1),
        (ep_all, e1),
        (ep_event, e2),
        (ep_all, e2),
    }


@pytest.mark.usefixtures("db", "redis_server")
def test_a_delivery_message_carries_one_endpoints_deliveries_from_the_batch():
    contract = address(9)
    ep_a = add_endpoint("http://127.0.0.1:1/a", contracts=[contract])[0]
    ep_b = add_endpoint("http://127.0.0.1:1/b", contracts=[contract])[0]
    events = [transfer(contract=contract, block=3, log_index=i, value=i) for i in range(40)]
    published: list[dict] = []

    def capture(sender=None, body=None, headers=None, **_):  # noqa: ANN001
        if sender == "ethhook.deliver.deliver_endpoint":
            published.append(body[1])

    before_task_publish.connect(capture)
    try:
        # The task body, run in this process; it publishes to the real (test) Redis broker.
        with session_scope() as session:
            (group,) = store_events(session, events, utcnow())
        match_events.run(event_ids=group.event_ids, token=group.token)
    finally:
        before_task_publish.disconnect(capture)
    assert sorted(m["endpoint_id"] for m in published) == [ep_a, ep_b]
    with session_scope() as session:
        for message in published:
            ids = session.scalars(
                select(Delivery.id).where(Delivery.endpoint_id == message["endpoint_id"])
            ).all()
            assert sorted(message["delivery_ids"]) == sorted(ids)
            assert len(ids) == 40
            assert message["token"]
