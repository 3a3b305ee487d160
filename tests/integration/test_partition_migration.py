"""Migration 0012 on a database with history: a million rows of revision 0011 (events, their
deliveries, attempts, a few deliveries still to send) become the legacy partitions of the
partitioned tables, nothing lost or changed, unique keys and open deliveries as they were, and a
replay of a legacy event finds its delivery instead of adding one."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from ethhook.db import get_engine, session_scope
from ethhook.db.models import Delivery, DeliveryStatus, Event, event_record_columns, utcnow
from ethhook.maintenance import jobs
from ethhook.match.replay import redeliver
from ethhook.types import ChainEvent
from ethhook.workqueue import store_events
from tests.support.env import BIN, ROOT
from tests.support.partitioning import HISTORY, private_database

EVENTS = 400_000  # as many deliveries, and half as many attempts: 1M rows
T0 = 1_764_000_000
# Columns of revision 0011, compared before and after.
COLUMNS = {
    "events": "id, chain_id, block_number, block_hash, block_timestamp, transaction_hash,"
    " transaction_index, log_index, address, topics::text, data, removed, replay_only,"
    " created_at, matched_at, lease_token, lease_expires_at",
    "deliveries": "id, endpoint_id, event_id, kind, status, attempts, next_attempt_at,"
    " release_block, lease_token, lease_expires_at, last_status_code, last_error, created_at,"
    " updated_at",
    "delivery_attempts": "id, delivery_id, attempt_number, started_at, duration_ms, status_code,"
    " error, response_body",
}
OPEN = (
    "CASE WHEN g % 40000 = 0 THEN 'pending' WHEN g % 40000 = 1 THEN 'waiting' ELSE 'succeeded' END"
)
# Event g: block g / 4, log g % 4, its id types.event_id_for's.
BLOCK_HASH = "'0x' || md5('b' || (g / 4)::text) || md5('c' || (g / 4)::text)"
EVENT_ID = (
    "'evt_' || left(encode(sha256(convert_to('1:' || "
    f"{BLOCK_HASH} || ':' || (g % 4)::text, 'UTF8')), 'hex'), 32)"
)


@pytest.fixture(scope="module")
def at_0011():  # noqa: ANN201
    with private_database(revision="0011") as url:
        yield url


def _seed() -> None:
    """Revision 0011's shapes: hash event ids, 4 logs a block, 10 endpoints, every event
    delivered, every other delivery attempted, 10 pending and 10 waiting deliveries."""
    with get_engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO endpoints (id, application_id, url, secret, event_signatures,"
                " confirmations, active, created_at, updated_at) SELECT g, (SELECT id FROM"
                " applications WHERE name = 'default'), 'http://127.0.0.1:9/w' || g,"
                " 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '[]', 0, true, now(), now()"
                " FROM generate_series(1, 10) g"
            )
        )
        conn.execute(text("SELECT setval('endpoints_id_seq', 10)"))
        conn.execute(
            text(
                "INSERT INTO events (id, chain_id, block_number, block_hash, block_timestamp,"
                " transaction_hash, transaction_index, log_index, address, topics, data, removed,"
                f" replay_only, created_at, matched_at) SELECT {EVENT_ID}, 1, 1000000 + g / 4,"
                f" {BLOCK_HASH}, :t0 + g * 2, '0x' || md5('t' || g) || md5('u' || g), 0, g % 4,"
                " '0x' || lpad(to_hex(g % 50), 40, '0'), json_build_array("
                "'0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef',"
                " '0x' || lpad(to_hex(g), 64, '0')), '0x' || lpad(to_hex(g), 64, '0'), false,"
                " false, to_timestamp(:t0 + g * 2), to_timestamp(:t0 + g * 2 + 1)"
                " FROM generate_series(1, :n) g"
            ),
            {"n": EVENTS, "t0": T0},
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (endpoint_id, event_id, kind, status, attempts,"
                " next_attempt_at, created_at, updated_at, last_status_code)"
                f" SELECT (g % 10) + 1, {EVENT_ID}, 'event.instant', {OPEN}, 1,"
                " CASE WHEN g % 40000 = 0 THEN now() END, to_timestamp(:t0 + g * 2),"
                " to_timestamp(:t0 + g * 2), 200 FROM generate_series(1, :n) g"
            ),
            {"n": EVENTS, "t0": T0},
        )
        conn.execute(
            text(
                "INSERT INTO delivery_attempts (delivery_id, attempt_number, started_at,"
                " duration_ms, status_code, response_body) SELECT g * 2, 1,"
                " to_timestamp(:t0 + g * 4), 12.5, 200, 'ok' FROM generate_series(1, :n / 2) g"
            ),
            {"n": EVENTS, "t0": T0},
        )


def _snapshot() -> dict[str, tuple[int, str]]:
    """Per table: its rows, and a digest of every 97th row's 0011 columns."""
    found = {}
    with get_engine().connect() as conn:
        for table, columns in COLUMNS.items():
            digest = conn.scalar(
                text(
                    f"SELECT md5(string_agg(row(s.*)::text, '|' ORDER BY s.id)) FROM"
                    f" (SELECT {columns} FROM {table} WHERE abs(hashtext(id::text)) % 97 = 0) s"
                )
            )
            count = conn.scalar(text(f"SELECT count(*) FROM {table}"))
            found[table] = (count, digest)
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)  # 82 s alone; four times that in the suite's busiest minutes (CI)
def test_a_million_rows_become_the_legacy_partitions_with_nothing_lost(at_0011):  # noqa: ANN001
    _seed()
    before = _snapshot()
    assert sum(count for count, _ in before.values()) == 1_000_000
    started = time.monotonic()
    upgrade = subprocess.run(
        [str(BIN / "ethhook"), "db", "upgrade"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    took = time.monotonic() - started
    assert upgrade.returncode == 0, upgrade.stderr
    print(f"0012 on 1M rows: {took:.1f} s\n{upgrade.stderr}")
    assert _snapshot() == before
    with get_engine().connect() as conn:
        for table in HISTORY:
            parent = conn.scalar(
                text(
                    "SELECT inhparent::regclass::text FROM pg_inherits"
                    " WHERE inhrelid = to_regclass(:t)"
                ),
                {"t": f"{table}_legacy"},
            )
            assert parent == table
        wrong = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM events WHERE event_at <> to_timestamp(block_timestamp)),"
                " (SELECT count(*) FROM deliveries d JOIN events e ON e.id = d.event_id"
                "  WHERE d.event_at <> e.event_at),"
                " (SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id"
                "  WHERE a.event_at <> d.event_at)"
            )
        ).one()
        assert tuple(wrong) == (0, 0, 0)
        twice = conn.scalar(
            text(
                "SELECT count(*) FROM (SELECT 1 FROM deliveries GROUP BY endpoint_id, event_id, kind"
                " HAVING count(*) > 1) d"
            )
        )
        assert twice == 0
    check = subprocess.run(
        [str(BIN / "alembic"), "check"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    _open_deliveries_go_on_and_a_replay_finds_its_row()


def _open_deliveries_go_on_and_a_replay_finds_its_row() -> None:
    with session_scope() as session:
        statuses = dict(
            session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.status.in_(DeliveryStatus.UNSENT))
                .group_by(Delivery.status)
            ).all()
        )
        assert statuses == {"pending": 10, "waiting": 10}
        groups = jobs.dispatch_due(session, utcnow() + timedelta(seconds=1), 100)
        assert sum(len(g.delivery_ids) for g in groups) == 10
    # Endpoint 1 watches event 10's contract: a replay of that event finds its delivery.
    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO endpoint_filters (endpoint_id, address, keyed)"
                " VALUES (1, '0x' || lpad(to_hex(10), 40, '0'), false)"
            )
        )
    with session_scope() as session:
        row = session.execute(
            select(*event_record_columns())
            .where(Event.block_number == 1000000 + 10 // 4)
            .where(Event.log_index == 10 % 4)
        ).one()
        event = ChainEvent(**row._asdict())  # event 10, as the node would give it again
        kept = session.scalar(select(Delivery.id).where(Delivery.event_id == event.event_id))
        count = session.scalar(select(func.count()).select_from(Delivery))
    assert kept is not None and count == EVENTS
    with session_scope() as session:
        groups = redeliver(session, [event], 10**12, utcnow())
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == count
    assert [i for g in groups for i in g.delivery_ids] == [kept]
    with session_scope() as session:
        assert store_events(session, [event], utcnow()) == []
        assert session.scalar(select(func.count()).select_from(Event)) == EVENTS
