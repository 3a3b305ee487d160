"""Retention on PostgreSQL drops whole partitions past ETHHOOK_RETENTION_DAYS: newer intervals are
untouched, an interval holding a waiting or pending delivery or an unmatched event is kept (and
said why, in the report, the log and the metrics), a row written while its partition is being
detached keeps it, and `ethhook db retention` runs it now or says what it would do."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update

from ethhook.db import get_engine, session_scope
from ethhook.db.models import Delivery, DeliveryAttempt, DeliveryStatus, Event, utcnow
from ethhook.db.partition_plan import aligned_span, partition_name
from ethhook.db.partitions import ensure_partitions
from ethhook.maintenance import jobs, retention
from ethhook.maintenance.retention import RUN_LOCK, run_retention
from ethhook.workqueue import store_events
from tests.support.cli import ethhook
from tests.support.db import store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import address
from tests.support.metric_names import registry
from tests.support.partitioning import (
    HISTORY,
    INTERVAL_S,
    event_at,
    partitions_of,
    private_database,
)
from tests.support.services import empty_tables

RETENTION_DAYS = 2  # partitioning.ENV


@pytest.fixture(scope="module", autouse=True)
def partitioned():  # noqa: ANN201
    with private_database() as url:
        yield url


@pytest.fixture(autouse=True)
def _empty() -> None:
    empty_tables()


def _interval(days_ago: float, offset: int = 0) -> datetime:
    """The start of the interval `days_ago` days (and `offset` intervals) before now."""
    when = utcnow() - timedelta(days=days_ago) + timedelta(seconds=INTERVAL_S * offset)
    start = aligned_span(when, INTERVAL_S).start
    assert start is not None
    return start


def _names(start: datetime) -> set[str]:
    return {partition_name(t, aligned_span(start, INTERVAL_S)) for t in HISTORY}


def _history(endpoint_id: int, start: datetime, n: int, block: int) -> list[int]:
    """n events in the interval at `start`, matched, each delivery succeeded with one attempt;
    their delivery ids."""
    events = [event_at(start + timedelta(seconds=i), i, block=block) for i in range(n)]
    with session_scope() as session:
        store_and_match(session, events, utcnow())
    with session_scope() as session:
        ids = session.scalars(
            select(Delivery.id).where(Delivery.event_id.in_([e.event_id for e in events]))
        ).all()
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(status=DeliveryStatus.SUCCEEDED, lease_token=None, lease_expires_at=None)
        )
        for i in ids:
            session.add(
                DeliveryAttempt(
                    delivery_id=i, attempt_number=1, started_at=utcnow(), duration_ms=1.0
                )
            )
    return list(ids)


def _value(name: str, **labels: str) -> float | None:
    return registry().get_sample_value(name, labels)


def test_retention_drops_old_intervals_keeps_newer_ones_and_every_unsent_delivery():
    endpoint_id, _ = add_endpoint("http://127.0.0.1:1/a", contracts=[address(1)])
    done, held, unmatched = _interval(3), _interval(3, 2), _interval(2.5)
    recent = _interval(1)
    _history(endpoint_id, done, 5, block=1)
    pending = _history(endpoint_id, held, 5, block=2)[:1]
    with session_scope() as session:  # one of them is being retried
        session.execute(
            update(Delivery).where(Delivery.id.in_(pending)).values(status=DeliveryStatus.PENDING)
        )
    _history(endpoint_id, unmatched, 3, block=3)
    with session_scope() as session:  # the listener stored it; the matcher has not seen it yet
        store_events(session, [event_at(unmatched + timedelta(seconds=9), 9, block=4)], utcnow())
    kept = _history(endpoint_id, recent, 4, block=5)
    # Pending deliveries of an endpoint deleted since, or disabled, hold nothing: a disabled
    # endpoint's deliveries wait for it within retention only.
    disabled, _ = add_endpoint("http://127.0.0.1:1/b", contracts=[address(1)])
    _history(endpoint_id, _interval(3, 4), 2, block=6)
    with get_engine().begin() as conn:
        conn.execute(text("UPDATE endpoints SET active = false WHERE id = :d"), {"d": disabled})
        window = {"s": _interval(3, 4), "e": _interval(3, 5), "d": disabled}
        inside = "event_at >= :s AND event_at < :e"
        conn.execute(text(f"UPDATE deliveries SET endpoint_id = 999 WHERE endpoint_id <> :d AND {inside}"), window)  # fmt: skip
        conn.execute(text(f"UPDATE deliveries SET status = 'pending' WHERE {inside}"), window)
    dropped_before = _value("retention_dropped_partitions_total", table="deliveries") or 0

    report = run_retention(get_engine(), utcnow(), RETENTION_DAYS)

    dropped = {p.name for p in report.dropped}
    assert _names(done) | _names(_interval(3, 4)) <= dropped
    assert not (_names(held) | _names(unmatched) | _names(recent)) & dropped
    reasons = {h.name: h.reason for h in report.held}
    assert reasons[partition_name("deliveries", aligned_span(held, INTERVAL_S))] == (
        "1 waiting or pending deliveries"
    )
    assert reasons[partition_name("events", aligned_span(unmatched, INTERVAL_S))] == (
        "1 events not yet matched"
    )
    assert reasons[partition_name("delivery_attempts", aligned_span(held, INTERVAL_S))] == (
        "kept with its interval"
    )
    for table in HISTORY:
        assert not _names(done) & partitions_of(table)
    with session_scope() as session:
        assert set(kept) <= set(session.scalars(select(Delivery.id)))
        assert session.scalar(select(func.count()).select_from(Event)) == 5 + 4 + 4
    # The delivery kept still gets its retries.
    with session_scope() as session:
        groups = jobs.dispatch_due(session, utcnow() + timedelta(hours=1), 100)
    assert [i for g in groups for i in g.delivery_ids] == pending
    assert _value("retention_held_partitions", table="deliveries") == 2
    assert _value("retention_held_partitions", table="events") == 2
    assert (_value("retention_overdue_seconds") or 0) > 0
    dropped_now = _value("retention_dropped_partitions_total", table="deliveries") or 0
    assert dropped_now - dropped_before == len(
        [p for p in report.dropped if p.table == "deliveries"]
    )
    # Once sent and matched, the next run drops them too.
    with session_scope() as session:
        session.execute(update(Delivery).values(status=DeliveryStatus.SUCCEEDED))
        session.execute(update(Event).values(matched_at=utcnow()))
    again = run_retention(get_engine(), utcnow(), RETENTION_DAYS)
    assert _names(held) | _names(unmatched) <= {p.name for p in again.dropped}
    assert again.held == [] and _value("retention_overdue_seconds") == 0


def test_a_dry_run_drops_nothing_and_the_command_says_what_it_did():
    endpoint_id, _ = add_endpoint("http://127.0.0.1:1/a", contracts=[address(1)])
    old = _interval(4)
    _history(endpoint_id, old, 2, block=1)
    help_text = ethhook("db", "retention", "--help")
    assert help_text.returncode == 0 and "--dry-run" in help_text.stdout
    dry = ethhook("db", "retention", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    said = json.loads(dry.stdout)
    assert said["dry_run"] is True and _names(old) <= {p["name"] for p in said["dropped"]}
    assert _names(old) <= set().union(*(partitions_of(t) for t in HISTORY))
    text_dry = ethhook("db", "retention", "--dry-run")
    assert text_dry.stdout.startswith("would drop ") and "before 20" in text_dry.stdout
    done = ethhook("db", "retention")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.startswith("dropped ")
        and partition_name("deliveries", aligned_span(old, INTERVAL_S)) in done.stdout
    )
    assert not _names(old) & set().union(*(partitions_of(t) for t in HISTORY))


def test_a_delivery_made_pending_while_its_partition_is_detached_keeps_the_partition(
    monkeypatch: pytest.MonkeyPatch,
):
    endpoint_id, _ = add_endpoint("http://127.0.0.1:1/a", contracts=[address(1)])
    old = _interval(5)
    ids = _history(endpoint_id, old, 3, block=1)
    with session_scope() as session:  # `ethhook delivery retry` after the check, say
        session.execute(
            update(Delivery).where(Delivery.id == ids[0]).values(status=DeliveryStatus.PENDING)
        )
    monkeypatch.setattr(retention, "_holds", lambda conn, old, report: [])  # checked before it

    report = run_retention(get_engine(), utcnow(), RETENTION_DAYS)

    name = partition_name("deliveries", aligned_span(old, INTERVAL_S))
    assert name in partitions_of("deliveries") and name not in {p.name for p in report.dropped}
    assert {h.name: h.reason for h in report.held}[name].startswith("a row to keep was written")
    with session_scope() as session:
        assert session.scalar(select(Delivery.status).where(Delivery.id == ids[0])) == "pending"


def test_tables_an_interrupted_run_detached_are_dropped_and_two_runs_never_overlap():
    with get_engine().begin() as conn:
        conn.execute(text("CREATE TABLE events_p20200101 (LIKE events)"))
    with get_engine().connect() as holder:
        holder.execute(text(f"SELECT pg_advisory_lock({RUN_LOCK})"))
        try:
            assert run_retention(get_engine(), utcnow(), RETENTION_DAYS).busy
        finally:
            holder.execute(text(f"SELECT pg_advisory_unlock({RUN_LOCK})"))
            holder.commit()
    report = run_retention(get_engine(), utcnow(), RETENTION_DAYS)
    assert "events_p20200101" in report.leftovers
    with get_engine().connect() as conn:
        assert conn.scalar(text("SELECT to_regclass('events_p20200101')")) is None


@pytest.mark.slow
def test_dropping_an_interval_takes_the_same_time_whatever_its_rows():
    """100k events, deliveries and attempts in each of two old intervals and a recent one:
    dropping the old ones is a few catalog changes per partition, whatever their rows (the
    acceptance: one day of 1M rows each in 5 s); the recent one is untouched."""
    starts = [_interval(3), _interval(3, 1), _interval(1)]
    add_endpoint("http://127.0.0.1:1/a", contracts=[address(1)])
    ensure_partitions(get_engine(), starts)
    for n, start in enumerate(starts):
        _seed(start, 100_000, n)
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE events, deliveries, delivery_attempts"))
    started = time.monotonic()
    report = run_retention(get_engine(), utcnow(), RETENTION_DAYS)
    took = time.monotonic() - started
    print(f"retention dropped {len(report.dropped)} partitions, 2 x 300k rows, in {took:.2f} s")
    assert _names(starts[0]) | _names(starts[1]) <= {p.name for p in report.dropped}
    assert took <= 5.0
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 100_000
        assert session.scalar(select(func.count()).select_from(DeliveryAttempt)) == 100_000


def _seed(start: datetime, n: int, salt: int) -> None:
    """n events in the interval at `start`, one succeeded delivery and one attempt each."""
    at = "CAST(:start AS timestamptz) + (g % 290) * interval '1 second'"
    with get_engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO events (id, event_at, chain_id, block_number, block_hash,"
                " block_timestamp, transaction_hash, transaction_index, log_index, address,"
                " topics, data, removed, replay_only, created_at, matched_at)"
                f" SELECT 'evt_' || md5(:salt || '-' || g), {at}, 1, g, '0x' || md5('b' || g),"
                f" extract(epoch FROM {at})::bigint, '0x' || md5('t' || g), 0, 0, :contract,"
                " '[]', '0x', false, false, now(), now() FROM generate_series(1, :n) g"
            ),
            {"start": start, "n": n, "salt": salt, "contract": address(1)},
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (event_at, endpoint_id, event_id, kind, status, attempts,"
                " created_at, updated_at) SELECT event_at, 1, id, 'event.instant', 'succeeded',"
                " 1, now(), now() FROM events WHERE event_at >= :start"
                " AND event_at < CAST(:start AS timestamptz) + interval '5 minutes'"
            ),
            {"start": start},
        )
        conn.execute(
            text(
                "INSERT INTO delivery_attempts (event_at, delivery_id, attempt_number, started_at,"
                " duration_ms, status_code) SELECT event_at, id, 1, now(), 1.0, 200 FROM deliveries"
                " WHERE event_at >= :start AND event_at < CAST(:start AS timestamptz)"
                " + interval '5 minutes'"
            ),
            {"start": start},
        )


def test_on_sqlite_the_commands_say_partitions_are_postgresqls_and_retention_deletes_rows(
    tmp_path,  # noqa: ANN001
):
    env = {"ETHHOOK_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    assert ethhook("db", "upgrade", env=env).returncode == 0
    listed = ethhook("db", "partitions", env=env)
    assert listed.returncode == 0 and listed.stdout.startswith("partitions are a PostgreSQL")
    assert json.loads(ethhook("db", "partitions", "--json", env=env).stdout) == []
    dry = ethhook("db", "retention", "--dry-run", env=env)
    assert dry.returncode == 0 and "deletes the finished deliveries" in dry.stdout
    done = json.loads(ethhook("db", "retention", "--json", env=env).stdout)
    assert done["partitioned"] is False
    assert done["deleted"] == {"attempts": 0, "deliveries": 0, "events": 0, "rollups": 0}
