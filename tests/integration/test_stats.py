"""Delivery rollups written by record() and the statistics read from them (never from attempts)."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from ethhook.config import get_settings
from ethhook.db import get_engine, make_engine, session_scope
from ethhook.db.models import (
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    Application,
    Delivery,
    DeliveryAttempt,
    Endpoint,
    Event,
    delivery_rollups,
    latency_column,
    utcnow,
)
from ethhook.deliver import http
from ethhook.deliver.service import deliver
from ethhook.deliver.store import Result, Work, load_endpoint, record
from ethhook.maintenance import jobs
from ethhook.service.stats import delivery_stats, percentile_from_buckets
from tests.support.cli import ethhook
from tests.support.db import store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer

T0 = datetime(2026, 11, 30, 10, 59, 30, tzinfo=UTC)


class Statements:
    """Every SQL statement an engine runs while listening."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        self.seen.append(statement)


def _deliveries(endpoint_id: int, contract: str, n: int, first_block: int = 1) -> list:
    """n deliveries for the endpoint, leased as the matcher leaves them; returns the groups."""
    events = [
        transfer(contract=contract, block=first_block + i, log_index=0, value=i) for i in range(n)
    ]
    with session_scope() as session:
        groups = store_and_match(session, events, utcnow())
    return [g for g in groups if g.endpoint_id == endpoint_id]


def _rollups(endpoint_id: int) -> dict[tuple[int, datetime], dict]:
    with session_scope() as session:
        rows = session.execute(
            select(delivery_rollups).where(delivery_rollups.c.endpoint_id == endpoint_id)
        ).mappings()
        return {(r["period_s"], r["period_start"]): dict(r) for r in rows}


def _expected_from_attempts(endpoint_id: int) -> dict[tuple[int, datetime], Counter]:
    """What the rollups must hold, computed here from the attempt rows themselves."""
    expected: dict[tuple[int, datetime], Counter] = defaultdict(Counter)
    with session_scope() as session:
        rows = session.execute(
            select(DeliveryAttempt, Delivery.status)
            .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
            .where(Delivery.endpoint_id == endpoint_id)
        ).all()
        for attempt, status in rows:
            minute = attempt.started_at.replace(second=0, microsecond=0)
            code = attempt.status_code
            hour, day = minute.replace(minute=0), minute.replace(hour=0, minute=0)
            for key in ((60, minute), (3600, hour), (86400, day)):
                c = expected[key]
                c["attempts"] += 1
                c["succeeded"] += code is not None and 200 <= code < 300
                c["client_errors"] += code is not None and 400 <= code < 500
                c["server_errors"] += code is not None and 500 <= code < 600
                c["no_response"] += code is None
                c["dead_lettered"] += status == "failed"
                c[latency_column(attempt.duration_ms)] += 1
    return expected


def _counts(row: dict) -> Counter:
    return Counter(
        {
            k: v
            for k, v in row.items()
            if k not in ("endpoint_id", "period_s", "period_start", "duration_ms_total") and v
        }
    )


@pytest.mark.usefixtures("db")
def test_attempts_sent_by_deliver_add_up_exactly_in_the_rollups(receiver, redis_server):
    # Given an endpoint that answers 200 six times (the first slowly), then 500, 500, 404,
    # and one that refuses connections; neither retries (a schedule of one attempt).
    def answers(n: int) -> tuple[int, dict[str, str], bytes]:
        if n == 0:
            time.sleep(0.12)
        return ([200] * 6 + [500, 500, 404])[n], {}, b"ok"

    receiver.responders["/a"] = answers
    a, _ = add_endpoint(receiver.url("/a"), contracts=[address(71)], retry_schedule="0")
    b, _ = add_endpoint("http://127.0.0.1:1/b", contracts=[address(72)], retry_schedule="0")
    # When deliver() sends them
    for endpoint_id, contract, n, block in ((a, address(71), 9, 1), (b, address(72), 2, 100)):
        for g in _deliveries(endpoint_id, contract, n, first_block=block):
            deliver(session_scope, get_settings(), endpoint_id, g.delivery_ids, g.token)
    # Then the rollups hold exactly what the attempt rows say, per minute and per hour
    for endpoint_id in (a, b):
        stored = _rollups(endpoint_id)
        expected = _expected_from_attempts(endpoint_id)
        assert {k: _counts(row) for k, row in stored.items()} == {
            k: +c for k, c in expected.items()
        }
    totals = {e: _total(_rollups(e), 60) for e in (a, b)}
    assert totals[a]["attempts"] == 9 and totals[a]["succeeded"] == 6
    assert totals[a]["server_errors"] == 2 and totals[a]["client_errors"] == 1
    assert totals[a]["dead_lettered"] == 3 and totals[a]["no_response"] == 0
    assert totals[b] == Counter(attempts=2, no_response=2, dead_lettered=2) + Counter(
        {c: totals[b][c] for c in LATENCY_COLUMNS}
    )
    assert sum(totals[a][c] for c in LATENCY_COLUMNS[3:]) >= 1  # the slow answer: > 100 ms


def _total(rows: dict, period_s: int) -> Counter:
    total: Counter = Counter()
    for (p, _), row in rows.items():
        if p == period_s:
            total.update(_counts(row))
    return total


# Ten attempts a minute apart around 11:00, durations one per latency bucket and ten more fast.
DURATIONS = [10.0, 30.0, 70.0, 200.0, 400.0, 800.0, 2000.0, 4000.0, 8000.0, 30000.0] + [5.0] * 10
STATUSES = [200] * 14 + [500, 503, 404, 301, None, None]


def _crafted(endpoint_id: int, contract: str) -> tuple[list[Result], str]:
    """DURATIONS/STATUSES as results of new deliveries, T0 + 3 s × i (10:59:30 … 11:00:27)."""
    groups = _deliveries(endpoint_id, contract, len(DURATIONS))
    ids = sorted(i for g in groups for i in g.delivery_ids)
    results = [
        Result(
            Work(delivery_id, 0, "wh", b"{}", 0, T0),
            T0 + timedelta(seconds=3 * i),
            http.HttpOutcome(status, duration, None if status else "connection error: refused"),
        )
        for i, (delivery_id, duration, status) in enumerate(
            zip(ids, DURATIONS, STATUSES, strict=True)
        )
    ]
    return results, groups[0].token


def _record(endpoint_id: int, results: list[Result], token: str) -> None:
    with session_scope() as session:
        endpoint = load_endpoint(session, endpoint_id, get_settings(), utcnow())
        assert endpoint is not None
        record(session, endpoint, results, token, utcnow())


def _record_crafted(endpoint_id: int, contract: str) -> None:
    _record(endpoint_id, *_crafted(endpoint_id, contract))


def _endpoint(n: int) -> int:
    """An endpoint for contract n that tries once: every failed attempt is dead-lettered."""
    return add_endpoint(f"http://127.0.0.1:1/{n}", contracts=[address(n)], retry_schedule="0")[0]


@pytest.mark.usefixtures("db")
def test_record_upserts_one_row_per_period_in_one_statement_and_adds_on_conflict():
    endpoint_id = _endpoint(73)
    results, token = _crafted(endpoint_id, address(73))
    statements = Statements()
    event.listen(get_engine(), "before_cursor_execute", statements)
    try:
        _record(endpoint_id, results, token)
    finally:
        event.remove(get_engine(), "before_cursor_execute", statements)
    assert len([s for s in statements.seen if "delivery_rollups" in s]) == 1
    # the attempts, the deliveries, failing_since and the rollups: one statement on PostgreSQL
    assert len([s for s in statements.seen if not s.startswith("SELECT")]) == 1
    rows = _rollups(endpoint_id)
    minute_1059, minute_1100 = T0.replace(second=0), T0.replace(minute=0, hour=11, second=0)
    assert sorted(rows) == [
        (60, minute_1059),
        (60, minute_1100),
        (3600, minute_1059.replace(minute=0)),
        (3600, minute_1100),
        (86400, minute_1059.replace(hour=0, minute=0)),
    ]
    # 10:59:30 … 10:59:57 are the first ten (one per bucket), 11:00:00 … the ten fast ones
    assert [rows[(60, minute_1059)][c] for c in LATENCY_COLUMNS] == [1] * 10
    assert rows[(60, minute_1100)]["latency_25ms"] == 10
    assert rows[(60, minute_1059)]["duration_ms_total"] == pytest.approx(sum(DURATIONS[:10]))
    # When more attempts fall in the same minutes, they are added to the stored rows
    _record(endpoint_id, results, token)
    again = _rollups(endpoint_id)
    assert again[(60, minute_1100)]["latency_25ms"] == 20
    assert again[(3600, minute_1100)]["attempts"] == 20
    assert (
        again[(60, minute_1059)]["attempts"]
        == again[(3600, minute_1059.replace(minute=0))]["attempts"]
        == 20
    )
    assert again[(86400, minute_1059.replace(hour=0, minute=0))]["attempts"] == 40


@pytest.mark.usefixtures("db")
def test_delivery_stats_counts_exactly_and_estimates_p95_within_its_bucket():
    endpoint_id = _endpoint(75)
    _record_crafted(endpoint_id, address(75))
    now = T0.replace(hour=11, minute=30, second=0)
    # Across the hour: 10:00 is read from an hour row; since 10:59 only minute rows are read
    with session_scope() as session:
        wide = delivery_stats(session, T0.replace(minute=0, second=0), now)
        narrow = delivery_stats(session, T0.replace(second=0), now)
        late = delivery_stats(session, T0.replace(hour=11, minute=0, second=0), now)
        # and T0's whole day from its day row
        days = delivery_stats(session, T0 - timedelta(days=3), T0 + timedelta(days=2))
    assert [s.endpoint_id for s in wide] == [endpoint_id]
    s = wide[0]
    assert (s.attempts, s.succeeded, s.failed) == (20, 14, 6)
    assert (s.server_errors, s.client_errors, s.no_response) == (2, 1, 2)
    assert s.dead_lettered == 6  # one attempt allowed: every failure gave its delivery up
    assert s.success_rate == pytest.approx(0.7)
    assert s.latency_buckets == tuple([11] + [1] * 9)
    assert s.latency_p95_ms == percentile_from_buckets(s.latency_buckets, LATENCY_BOUNDS_MS, 0.95)
    # The true P95 (19th of 20) is 8,000 ms, in (5,000, 10,000]: so is the estimate
    assert 5000 < s.latency_p95_ms <= 10000
    assert 0 < s.latency_p50_ms <= 25
    assert s.latency_mean_ms == pytest.approx(sum(DURATIONS) / 20)
    assert narrow == wide == days
    assert late[0].attempts == 10 and late[0].latency_buckets == (10,) + (0,) * 9


@pytest.mark.usefixtures("db")
def test_delivery_stats_never_reads_attempt_rows_and_issues_two_statements():
    endpoint_id = _endpoint(76)
    _record_crafted(endpoint_id, address(76))
    statements = Statements()
    event.listen(get_engine(), "before_cursor_execute", statements)
    try:
        with session_scope() as session:
            stats = delivery_stats(session, T0 - timedelta(days=7), T0 + timedelta(days=1))
            scoped = delivery_stats(
                session, T0 - timedelta(days=7), T0, endpoint_ids=select(Endpoint.id)
            )
    finally:
        event.remove(get_engine(), "before_cursor_execute", statements)
    assert stats[0].attempts == 20 and scoped == stats
    queries = [s for s in statements.seen if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 4
    assert not [s for s in statements.seen if "delivery_attempts" in s]


@pytest.mark.usefixtures("db")
def test_open_deliveries_are_counted_by_status_and_the_filter_limits_endpoints():
    a, _ = add_endpoint("http://127.0.0.1:1/a", contracts=[address(77)])
    b, _ = add_endpoint("http://127.0.0.1:1/b", contracts=[address(78)])
    _deliveries(a, address(77), 3)
    _deliveries(b, address(78), 1, first_block=100)
    with session_scope() as session:
        every = delivery_stats(session, utcnow() - timedelta(hours=1))
        only_b = delivery_stats(session, utcnow() - timedelta(hours=1), endpoint_ids=[b])
    assert [(s.endpoint_id, s.attempts, s.deliveries["pending"]) for s in every] == [
        (a, 0, 3),
        (b, 0, 1),
    ]
    assert [s.endpoint_id for s in only_b] == [b] and only_b[0].success_rate is None


@pytest.mark.usefixtures("db")
def test_cleanup_deletes_rollups_whose_period_ended_before_retention():
    endpoint_id = _endpoint(79)
    _record_crafted(endpoint_id, address(79))  # 10:59:30 … 11:00:27 on T0's day
    now = T0.replace(hour=11, minute=0, second=30) + timedelta(days=30)
    with session_scope() as session:
        counts = jobs.cleanup(session, now, retention_days=30, batch_size=100)
    # The 10:59 minute and the 10:00 hour ended before the cutoff (11:00:30, 30 days before)
    assert counts["rollups"] == 2
    assert sorted(_rollups(endpoint_id)) == [
        (60, T0.replace(hour=11, minute=0, second=0)),
        (3600, T0.replace(hour=11, minute=0, second=0)),
        (86400, T0.replace(hour=0, minute=0, second=0)),  # its day has not ended yet
    ]
    later = now + timedelta(days=1)
    with session_scope() as session:
        assert jobs.cleanup(session, later, retention_days=30, batch_size=100)["rollups"] == 3


@pytest.mark.usefixtures("db")
def test_the_stats_command_prints_json_text_and_refuses_bad_input():
    endpoint_id = _endpoint(80)
    _record_crafted(endpoint_id, address(80))
    since = (T0 - timedelta(hours=2)).isoformat()
    out = ethhook("stats", "--since", since, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [(e["endpoint_id"], e["attempts"], e["succeeded"]) for e in data["endpoints"]] == [
        (endpoint_id, 20, 14)
    ]
    text = ethhook("stats", "--since", since, "--endpoint", str(endpoint_id))
    assert text.returncode == 0 and "70.0%" in text.stdout
    assert "no delivery attempts" in ethhook("stats", "--endpoint", "999").stdout
    for bad in (["--since", "yesterday"], ["--endpoint", "x"]):
        refused = ethhook("stats", *bad)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1


def test_rollups_and_stats_work_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    # The schema as the demo makes it (the migrations: SQLite keeps plain tables).
    assert ethhook("db", "upgrade", env={"ETHHOOK_DATABASE_URL": url}).returncode == 0
    engine = make_engine(url)
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        app = session.scalar(select(Application.id).where(Application.name == "default"))
        session.add(Endpoint(id=1, application_id=app, url="http://127.0.0.1:1/x", secret="whsec_x"))
        session.add(
            Event(
                id="e1", chain_id=1, block_number=1, block_hash="0x1", block_timestamp=0,
                transaction_hash="0x2", transaction_index=0, log_index=0, address="0x3",
                topics=[], data="0x",
            )
        )  # fmt: skip
        session.add(
            Delivery(id=1, endpoint_id=1, event_id="e1", kind="event.instant", status="pending")
        )
        session.flush()
        endpoint = load_endpoint(session, 1, get_settings(), utcnow())
        assert endpoint is not None
        work = Work(1, 0, "wh", b"{}", 0, T0)
        for status in (200, 500):
            results = [Result(work, T0, http.HttpOutcome(status, 42.0))]
            record(session, endpoint, results, "token", utcnow())
        session.commit()
        stats = delivery_stats(session, T0 - timedelta(minutes=5), T0 + timedelta(minutes=5))
    engine.dispose()
    assert [(s.attempts, s.succeeded, s.server_errors) for s in stats] == [(2, 1, 1)]
    assert stats[0].latency_buckets[1] == 2 and 25 < (stats[0].latency_p95_ms or 0) <= 50
