"""events, deliveries and delivery_attempts partitioned by their event's time (PostgreSQL): rows
land in their event's interval, partitions for any time are made when a write needs them, unique
keys and webhook-ids hold across a replay a month later, statements naming rows by id read one
partition, and the FOR KEY SHARE that replaces the foreign key to endpoints."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from ethhook.config import get_settings
from ethhook.db import get_engine, session_scope
from ethhook.db.models import Delivery, DeliveryAttempt, DeliveryStatus, Event, utcnow
from ethhook.db.partition_plan import aligned_span, event_time, partition_name
from ethhook.db.partitions import ensure_ahead, forget_partitions, list_partitions
from ethhook.deliver.http import HttpOutcome
from ethhook.deliver.service import deliver
from ethhook.deliver.store import Result, claim_and_load, load_work, record
from ethhook.match.replay import redeliver
from ethhook.service.endpoints import delete_endpoint
from ethhook.service.scope import OPERATOR
from ethhook.types import webhook_id_for
from ethhook.workqueue import (
    DispatchGroup,
    NewLeases,
    delivery_row,
    due_deliveries,
    insert_deliveries,
    lease_available,
    new_claim_token,
    store_events,
)
from tests.support.cli import ethhook
from tests.support.db import explained, store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import address
from tests.support.partitioning import (
    HISTORY,
    INTERVAL_S,
    event_at,
    partition_of,
    partitions_of,
    private_database,
)
from tests.support.services import empty_tables
from tests.support.waiting import wait_until


@pytest.fixture(scope="module", autouse=True)
def partitioned():  # noqa: ANN201
    with private_database() as url:
        yield url


@pytest.fixture(autouse=True)
def _empty() -> None:
    empty_tables()


def _days_ago(days: float) -> object:
    return utcnow().replace(microsecond=0) - timedelta(days=days)


def test_the_history_tables_are_partitioned_with_partitions_ahead_and_listed():
    with get_engine().connect() as conn:
        parents = conn.execute(
            text(
                "SELECT c.relname, p.partstrat, a.attname FROM pg_partitioned_table p"
                " JOIN pg_class c ON c.oid = p.partrelid"
                " JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
                " ORDER BY 1"
            )
        ).all()
    assert [tuple(p) for p in parents] == [(t, "r", "event_at") for t in sorted(HISTORY)]
    now = utcnow()
    wanted = [
        aligned_span(now + timedelta(seconds=INTERVAL_S * i), INTERVAL_S) for i in range(-1, 4)
    ]
    for table in HISTORY:
        assert {partition_name(table, span) for span in wanted} <= partitions_of(table)
    listed = ethhook("db", "partitions", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {r["table"] for r in rows} == set(HISTORY)
    one = next(r for r in rows if r["name"] == partition_name("deliveries", wanted[1]))
    assert (one["from"], one["to"]) == (
        wanted[1].start.isoformat().replace("+00:00", "Z"),
        wanted[1].end.isoformat().replace("+00:00", "Z"),
    )
    assert one["bytes"] > 0 and one["detaching"] is False
    exact = json.loads(ethhook("db", "partitions", "--json", "--exact").stdout)
    assert all(r["rows"] == 0 for r in exact)
    shown = ethhook("db", "partitions")
    assert shown.returncode == 0 and shown.stdout.splitlines()[0].split() == [
        "table", "partition", "from", "to", "rows", "size"
    ]  # fmt: skip
    assert partition_name("events", wanted[1]) in shown.stdout


def test_rows_live_in_their_events_interval_made_when_a_write_needs_it(receiver, redis_server):
    endpoint_id, _ = add_endpoint(receiver.url("/a"), contracts=[address(1)])
    old = _days_ago(10)
    events = [event_at(old + timedelta(seconds=INTERVAL_S * i), i) for i in range(3)]
    spans = [aligned_span(event_time(e.block_timestamp), INTERVAL_S) for e in events]
    assert not {partition_name("events", s) for s in spans} & partitions_of("events")
    with session_scope() as session:
        groups = store_and_match(session, events, utcnow())
    (group,) = groups
    assert group.event_at_range == (
        event_time(events[0].block_timestamp),
        event_time(events[2].block_timestamp),
    )
    report = deliver(
        session_scope,
        get_settings(),
        endpoint_id,
        group.delivery_ids,
        group.token,
        group.event_at_range,
    )
    assert report.succeeded == 3
    for event, span in zip(events, spans, strict=True):
        where = {"e": event.event_id}
        assert partition_of("events", "id = :e", where) == [partition_name("events", span)]
        assert partition_of("deliveries", "event_id = :e", where) == [
            partition_name("deliveries", span)
        ]
        attempts = "delivery_id IN (SELECT id FROM deliveries WHERE event_id = :e)"
        assert partition_of("delivery_attempts", attempts, where) == [
            partition_name("delivery_attempts", span)
        ]


def test_a_replay_a_month_later_adds_no_row_and_keeps_every_webhook_id(receiver, redis_server):
    endpoint_id, _ = add_endpoint(receiver.url("/a"), contracts=[address(1)])
    events = [event_at(_days_ago(3) + timedelta(seconds=i), i) for i in range(4)]
    with session_scope() as session:
        store_and_match(session, events, utcnow())
    with session_scope() as session:
        before = session.execute(select(Delivery.id, Delivery.event_id).order_by(Delivery.id)).all()
    month_later = utcnow() + timedelta(days=30)
    with session_scope() as session:
        assert store_events(session, events, month_later) == []  # stored: nothing new to match
        groups = redeliver(session, events, head=10**12, now=month_later)
    with session_scope() as session:
        after = session.execute(select(Delivery.id, Delivery.event_id).order_by(Delivery.id)).all()
        assert session.scalar(select(func.count()).select_from(Event)) == 4
    assert after == before and sorted(i for g in groups for i in g.delivery_ids) == [
        i for i, _ in before
    ]
    ids = {webhook_id_for(endpoint_id, e.event_id, "event.instant") for e in events}
    report = deliver(
        session_scope,
        get_settings(),
        endpoint_id,
        groups[0].delivery_ids,
        groups[0].token,
        groups[0].event_at_range,
    )
    assert report.succeeded == 4
    assert {r.webhook_id for r in receiver.on("/a")} == ids


def _three_in_one_of_five_intervals() -> DispatchGroup:
    """Five intervals of history, one event each, and three events' deliveries in a sixth
    interval half a day before them: the message the matcher leased them to."""
    for i in range(5):
        with session_scope() as session:
            store_and_match(
                session,
                [event_at(_days_ago(1) + timedelta(seconds=INTERVAL_S * i), 0, block=i)],
                utcnow(),
            )
    with session_scope() as session:
        (group,) = store_and_match(
            session, [event_at(_days_ago(1.5), n, block=99) for n in range(3)], utcnow()
        )
    return group


def test_statements_that_name_rows_by_id_read_one_partition():
    endpoint_id, _ = add_endpoint("http://127.0.0.1:1/a", contracts=[address(1)])
    group = _three_in_one_of_five_intervals()
    settings, worker = get_settings(), new_claim_token()

    def claim():  # noqa: ANN202
        with session_scope() as session:
            return claim_and_load(
                session,
                endpoint_id,
                group.delivery_ids,
                group.token,
                worker,
                utcnow(),
                settings,
                100,
                group.event_at_range,
            )

    claimed, plan = explained(claim)
    assert claimed.claimed == group.delivery_ids and len(claimed.first) == 3
    assert _partitions_read(plan, "deliveries") == 1 and _partitions_read(plan, "events") == 1, plan
    assert claimed.endpoint is not None
    results = [Result(w, utcnow(), HttpOutcome(200, 5.0)) for w in claimed.first]

    def settle() -> None:
        with session_scope() as session:
            record(session, claimed.endpoint, results, worker, utcnow())

    _, plan = explained(settle)
    assert _partitions_read(plan, "deliveries") == 1, plan
    assert plan.count("Insert on delivery_attempts") == 1, plan
    with session_scope() as session:
        work, plan = explained(
            lambda: load_work(
                session, claimed.endpoint, group.delivery_ids, settings, group.event_at_range
            )
        )
    assert len(work) == 3 and _partitions_read(plan, "deliveries") == 1, plan
    with session_scope() as session:
        assert {
            d.status
            for d in session.scalars(select(Delivery).where(Delivery.id.in_(group.delivery_ids)))
        } == {DeliveryStatus.SUCCEEDED}


def test_beat_leases_due_deliveries_in_their_partition_only():
    add_endpoint("http://127.0.0.1:1/a", contracts=[address(1)])
    group = _three_in_one_of_five_intervals()
    with session_scope() as session:  # their message was lost: only they are due
        session.execute(
            update(Delivery)
            .where(Delivery.id.not_in(group.delivery_ids))
            .values(status=DeliveryStatus.SUCCEEDED, lease_token=None, lease_expires_at=None)
        )
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(group.delivery_ids))
            .values(lease_token=None, lease_expires_at=None)
        )
    with session_scope() as session:
        due = due_deliveries(session, utcnow(), 100)
        assert sorted(d for _, d, _ in due) == group.delivery_ids
        (leased,), plan = explained(lambda: lease_available(session, due, utcnow()))
    assert leased.delivery_ids == group.delivery_ids
    assert _partitions_read(plan, "deliveries") == 1, plan


def _partitions_read(plan: str, table: str) -> int:
    """How many partitions of `table` the plan scans."""
    return len(set(re.findall(rf"\b{table}_p[0-9]{{8}}(?:t[0-9]{{4}})?\b(?!_)", plan)))


def test_a_write_whose_partition_another_process_dropped_makes_it_again():
    endpoint_id, _ = add_endpoint("http://127.0.0.1:1/a", contracts=[address(1)])
    for days, block in ((10, 1), (0.5, 2)):  # past retention (2 days), then a recent time
        first, second = (
            event_at(_days_ago(days), 0, block=block),
            event_at(_days_ago(days), 1, block=block),
        )
        with session_scope() as session:
            store_events(session, [first], utcnow())  # this process now knows the partition
        span = aligned_span(event_time(first.block_timestamp), INTERVAL_S)
        _drop_elsewhere(span)
        if days < 2:
            # A recent partition is never retention's: the write fails once, then finds it made.
            with pytest.raises(DBAPIError), session_scope() as session:
                store_events(session, [second], utcnow())
        with session_scope() as session:
            store_events(session, [second], utcnow())
        assert partition_of("events", "id = :e", {"e": second.event_id}) == [
            partition_name("events", span)
        ]
    assert endpoint_id


def _drop_elsewhere(span) -> None:  # noqa: ANN001
    with get_engine().begin() as conn:
        for table in HISTORY:
            conn.execute(text(f"DROP TABLE {partition_name(table, span)}"))


def test_deleting_an_endpoint_deletes_its_rows_after_a_matcher_inserting_for_it_commits():
    doomed, _ = add_endpoint("http://127.0.0.1:1/doomed", contracts=[address(1)])
    kept, _ = add_endpoint("http://127.0.0.1:1/kept", contracts=[address(1)])
    with session_scope() as session:
        store_and_match(session, [event_at(_days_ago(1), n) for n in range(3)], utcnow())
    with session_scope() as session:
        ids = session.scalars(select(Delivery.id).order_by(Delivery.id)).all()
        for i in ids:
            session.add(
                DeliveryAttempt(
                    delivery_id=i, attempt_number=1, started_at=utcnow(), duration_ms=1.0
                )
            )
    late = event_at(_days_ago(1), 9)
    inserted, release = threading.Event(), threading.Event()

    def matcher() -> None:  # inserts a delivery for `doomed` and holds its transaction open
        with session_scope() as session:
            store_events(session, [late], utcnow())
            leases = NewLeases(utcnow())
            row = delivery_row(
                doomed,
                late.event_id,
                "event.instant",
                "pending",
                utcnow(),
                event_at=event_time(late.block_timestamp),
                next_attempt_at=utcnow(),
                token=leases.token(doomed),
                lease_expires_at=leases.expires_at,
            )
            assert len(insert_deliveries(session, [row], leases)) == 1
            inserted.set()
            release.wait(30)

    thread = threading.Thread(target=matcher)
    thread.start()
    assert inserted.wait(30)
    deleting = threading.Thread(target=_delete, args=(doomed,))
    deleting.start()
    wait_until(_waiting_for_a_lock, 30, what="the delete to wait for the matcher's transaction")
    release.set()
    thread.join(30)
    deleting.join(30)
    with session_scope() as session:
        left = session.execute(
            select(Delivery.endpoint_id, func.count()).group_by(Delivery.endpoint_id)
        ).all()
        attempts = session.scalar(select(func.count()).select_from(DeliveryAttempt))
    assert dict(left) == {kept: 3} and attempts == 3
    # A delivery for an endpoint that is gone is not inserted at all.
    with session_scope() as session:
        row = delivery_row(
            doomed,
            late.event_id,
            "event.instant",
            "pending",
            utcnow(),
            event_at=event_time(late.block_timestamp),
        )
        assert insert_deliveries(session, [row], NewLeases(utcnow())) == []


def _delete(endpoint_id: int) -> None:
    with session_scope() as session:
        delete_endpoint(session, endpoint_id, scope=OPERATOR)


def _waiting_for_a_lock() -> bool:
    with get_engine().connect() as conn:
        return bool(conn.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")))


def test_claims_and_leases_are_hot_updates_in_the_deliveries_partitions():
    endpoint_id, _ = add_endpoint("http://127.0.0.1:1/a", contracts=[address(1)])
    when = _days_ago(4)
    with session_scope() as session:
        (group,) = store_and_match(session, [event_at(when, n) for n in range(100)], utcnow())
    name = partition_name("deliveries", aligned_span(when, INTERVAL_S))
    # The matcher numbered the 100 deliveries (one update each): counted before, not with the
    # claims (a backend reports its statistics up to a second after its transaction).
    wait_until(lambda: _updates(name)[0] >= 100, 30, what="the numbering's stats")
    before = _updates(name)
    settings, worker = get_settings(), new_claim_token()
    with session_scope() as session:
        got = claim_and_load(
            session,
            endpoint_id,
            group.delivery_ids,
            group.token,
            worker,
            utcnow(),
            settings,
            100,
            group.event_at_range,
        )
    claimed = wait_until(lambda: _updates(name)[0] >= before[0] + 100, 30, what="the claims' stats")
    assert claimed and _updates(name)[1] - before[1] == 100, _updates(name)  # all 100 HOT
    assert got.endpoint is not None
    with session_scope() as session:
        record(
            session,
            got.endpoint,
            [Result(w, utcnow(), HttpOutcome(200, 1.0)) for w in got.first],
            worker,
            utcnow(),
        )
    wait_until(lambda: _updates(name)[0] >= before[0] + 200, 30, what="the records' stats")
    updates, hot = _updates(name)
    print(
        f"deliveries partition {name}: numbering {before[0]} updates, {before[1]} HOT; claims"
        f" and records {updates - before[0]} updates, {hot - before[1]} HOT"
    )


def _updates(table: str) -> tuple[int, int]:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        row = conn.execute(
            text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = :t"),
            {"t": table},
        ).one()
        return int(row[0]), int(row[1])


def test_beat_and_db_upgrade_make_the_partitions_ahead():
    later = utcnow() + timedelta(hours=2)
    span = aligned_span(later, INTERVAL_S)
    assert partition_name("events", span) not in partitions_of("events")
    ensure_ahead(get_engine(), later)  # what beat's ethhook.maintenance.partitions does then
    for table in HISTORY:
        assert partition_name(table, span) in partitions_of(table)
    with get_engine().begin() as conn:
        for table in HISTORY:
            conn.execute(
                text(f"DROP TABLE {partition_name(table, aligned_span(utcnow(), INTERVAL_S))}")
            )
    forget_partitions()
    assert ethhook("db", "upgrade").returncode == 0
    now_span = aligned_span(utcnow(), INTERVAL_S)
    made = {p.name for p in list_partitions(get_engine())}
    assert {partition_name(table, now_span) for table in HISTORY} <= made


def test_a_transaction_that_wrote_history_can_still_have_a_partition_made():
    """The partition is made on another connection while this transaction holds its locks: the
    attach takes SHARE UPDATE EXCLUSIVE on the parent, which never waits for writers."""
    add_endpoint("http://127.0.0.1:1/a", contracts=[address(1)])
    started = time.monotonic()
    with session_scope() as session:
        store_and_match(session, [event_at(_days_ago(1), 0, block=1)], utcnow())
        store_and_match(session, [event_at(_days_ago(20), 0, block=2)], utcnow())
    assert time.monotonic() - started < 5
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 2
