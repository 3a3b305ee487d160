"""Stored events are the matcher's outbox: leased to one message, claimed once, found again when
the message is lost, brought back when a reorg is undone."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.db.models import Delivery, DeliveryStatus, Event, EventKind, utcnow
from ethhook.listen.records import BlockHeader
from ethhook.listen.store import save_range
from ethhook.maintenance.jobs import dispatch_unmatched
from ethhook.match.replay import redeliver
from ethhook.match.service import match_stored
from ethhook.types import ChainEvent
from ethhook.workqueue import claim_unmatched, orphan_blocks, store_events
from tests.support.db import explained
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, h32, transfer

pytestmark = pytest.mark.usefixtures("db")

TOKEN = address(40)


def events(n: int, block: int = 1, chain_id: int = 1):  # noqa: ANN201
    return [
        transfer(chain_id=chain_id, contract=TOKEN, block=block + i // 50, log_index=i, value=i)
        for i in range(n)
    ]


def unmatched() -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(Event.id).where(Event.matched_at.is_(None))).all())


def test_stored_events_are_leased_in_batches_in_chain_order_and_stored_once():
    batch = events(250)
    with session_scope() as session:
        groups = store_events(session, batch, utcnow())
    with session_scope() as session:
        again = store_events(session, batch, utcnow())

    size = get_settings().match_batch_size
    assert [len(g.event_ids) for g in groups] == [size, size, 250 - 2 * size]
    assert [i for g in groups for i in g.event_ids] == [e.event_id for e in batch]
    assert len({g.token for g in groups}) == 3
    assert again == []  # a re-read range publishes nothing
    assert sorted(unmatched()) == sorted(e.event_id for e in batch)


def test_any_message_naming_the_events_claims_them_and_only_once():
    add_endpoint("http://127.0.0.1:1/a", contracts=[TOKEN])
    now = utcnow()
    with session_scope() as session:
        (group,) = store_events(session, events(10), now)

    with session_scope() as session:
        stale, deliveries = match_stored(session, group.event_ids, "an-older-message", now)
    with session_scope() as session:
        leased, nothing = match_stored(session, group.event_ids, group.token, now)
    with session_scope() as session:
        duplicate, _ = match_stored(session, group.event_ids, group.token, now)

    # A message beat sent earlier (its lease expired) still does the work; the one the events are
    # leased to now, and any duplicate, find them matched.
    assert (stale, leased, duplicate) == (10, 0, 0)
    assert sum(len(g.delivery_ids) for g in deliveries) == 10 and nothing == []
    assert unmatched() == []


def test_a_failed_match_leaves_the_events_unmatched_for_the_retried_message():
    add_endpoint("http://127.0.0.1:1/a", contracts=[TOKEN])
    with session_scope() as session:
        (group,) = store_events(session, events(5), utcnow())

    with pytest.raises(RuntimeError), session_scope() as session:
        match_stored(session, group.event_ids, group.token, utcnow())
        raise RuntimeError("the database went away before the commit")

    assert len(unmatched()) == 5
    with session_scope() as session:
        claimed, _ = match_stored(session, group.event_ids, group.token, utcnow())
    assert claimed == 5


def test_beat_dispatches_unmatched_events_only_once_their_lease_has_expired():
    now = utcnow()
    with session_scope() as session:
        (lost,) = store_events(session, events(30), now)
    with session_scope() as session:
        assert dispatch_unmatched(session, now, 1000) == []  # the listener's message may come
    later = now + timedelta(seconds=get_settings().dispatch_lease_s + 1)
    with session_scope() as session:
        (found,) = dispatch_unmatched(session, later, 1000)
    with session_scope() as session:
        assert dispatch_unmatched(session, later, 1000) == []  # leased again, to `found`

    assert found.event_ids == lost.event_ids and found.token != lost.token
    with session_scope() as session:
        late, _ = match_stored(session, lost.event_ids, lost.token, later)
        claimed, _ = match_stored(session, found.event_ids, found.token, later)
    assert (late, claimed) == (30, 0)  # the late message is not wasted: it matched them


def test_events_a_replay_stored_before_the_listener_are_matched_for_everyone_when_it_reads_them():
    replayer = add_endpoint("http://127.0.0.1:1/a", contracts=[TOKEN])[0]
    other = add_endpoint("http://127.0.0.1:1/b", contracts=[TOKEN], confirmations=2)[0]
    ahead = events(4, block=9)
    now = utcnow()
    with session_scope() as session:  # A replays blocks the listener has not read
        groups = redeliver(session, ahead, head=9, now=now, endpoint_id=replayer)
    assert [len(g.delivery_ids) for g in groups] == [4]
    assert unmatched() == []  # the replay's events wait for the listener, not for the matcher

    with session_scope() as session:  # the listener reaches the block
        (group,) = store_events(session, ahead, now)
        claimed, _ = match_stored(session, group.event_ids, group.token, now)
    with session_scope() as session:  # and reads it again: nothing more
        again = store_events(session, ahead, now)
        rows = session.execute(select(Delivery.endpoint_id, Delivery.kind)).all()
        replay_only = session.scalars(select(Event.replay_only)).all()

    assert claimed == 4 and again == [] and set(replay_only) == {False}
    assert sorted(rows) == sorted(
        [(replayer, EventKind.INSTANT)] * 4 + [(other, EventKind.CONFIRMED)] * 4
    )


def test_events_of_a_reorg_that_is_undone_are_restored_and_their_unsent_deliveries_go_out():
    instant = add_endpoint("http://127.0.0.1:1/instant", contracts=[TOKEN])[0]
    confirmed = add_endpoint("http://127.0.0.1:1/conf", contracts=[TOKEN], confirmations=5)[0]
    block_a = events(3, block=7)
    now = utcnow()
    with session_scope() as session:
        (group,) = store_events(session, block_a, now)
        match_stored(session, group.event_ids, group.token, now)
    with session_scope() as session:  # A is orphaned by B: instant ones are told, confirmed wait
        orphan_blocks(session, 1, [block_a[0].block_hash], now)

    with session_scope() as session:  # B is orphaned by A again: the listener stores A anew
        (restored,) = store_events(session, block_a, now)
        claimed, groups = match_stored(session, restored.event_ids, restored.token, now)

    assert claimed == 3 and groups == []  # nothing new to create: the deliveries exist
    with session_scope() as session:
        rows = session.execute(select(Delivery.endpoint_id, Delivery.kind, Delivery.status)).all()
        removed = session.scalars(select(Event.removed)).all()
    assert set(removed) == {False}
    assert sorted(rows) == sorted(
        [(instant, EventKind.INSTANT, DeliveryStatus.PENDING)] * 3
        + [(instant, EventKind.REMOVED, DeliveryStatus.CANCELLED)] * 3
        + [(confirmed, EventKind.CONFIRMED, DeliveryStatus.WAITING)] * 3
    )


def test_saving_a_range_orphans_events_stored_at_its_heights_in_other_blocks():
    add_endpoint("http://127.0.0.1:1/a", contracts=[TOKEN])
    stale = events(2, block=5)  # stored in a block that is not on the chain any more
    with session_scope() as session:
        store_events(session, stale, utcnow())
    canonical = BlockHeader(5, h32("other", 5), h32("parent", 4), 1000)
    fresh = [
        transfer(contract=TOKEN, block=5, log_index=9, value=1).__class__(
            **{
                **transfer(contract=TOKEN, block=5, log_index=9, value=1).__dict__,
                "block_hash": canonical.hash,
            }
        )
    ]

    groups = save_range(1, [canonical], fresh)

    assert [g.event_ids for g in groups] == [[fresh[0].event_id]]
    with session_scope() as session:
        by_hash = dict(session.execute(select(Event.block_hash, Event.removed)).all())
    assert by_hash == {stale[0].block_hash: True, canonical.hash: False}


def test_a_claim_reads_its_events_by_id_not_the_backlog_of_unmatched_events():
    with session_scope() as session:
        groups = store_events(session, events(5_000), utcnow())

    group = groups[7]

    def claim() -> list[ChainEvent]:
        with session_scope() as session:
            return claim_unmatched(
                session, group.event_ids, group.token, utcnow(), group.event_at_range
            )

    claimed, plan = explained(claim)
    assert len(claimed) == len(group.event_ids)
    # One partition's primary key (the message's time range prunes the others), not the index
    # of unmatched events (its partitions' copies are named after its columns).
    assert re.search(r"events_p[0-9]+_pkey", plan) and "log_index_idx" not in plan, plan
    assert plan.count("Update on events_") == 1, plan
