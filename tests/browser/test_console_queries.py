"""What the console's pages read: attempts per minute from the rollups, deliveries newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from ethhook.db import session_scope
from ethhook.db.models import (
    LATENCY_COLUMNS,
    ROLLUP_HOUR_S,
    ROLLUP_MINUTE_S,
    delivery_rollups,
    utcnow,
)
from ethhook.exceptions import NotFoundError
from ethhook.service.deliveries import DeliveryFilter, list_deliveries
from ethhook.service.stats import deliveries_per_minute
from tests.support.console import make_tenant
from tests.support.db import store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("db")]

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def _rollup(endpoint_id: int, period_s: int, start: datetime, attempts: int, ok: int) -> dict:
    row = dict.fromkeys(
        (
            "client_errors",
            "server_errors",
            "no_response",
            "dead_lettered",
            "duration_ms_total",
            *LATENCY_COLUMNS,
        ),
        0,
    )
    row.update(
        endpoint_id=endpoint_id,
        period_s=period_s,
        period_start=start,
        attempts=attempts,
        succeeded=ok,
    )
    return row


def test_attempts_per_minute_come_from_minute_rows_with_empty_minutes_as_zero():
    tenant = make_tenant("acme")
    mine, _ = add_endpoint("http://127.0.0.1:9/a", application_id=tenant.application_id)
    other, _ = add_endpoint("http://127.0.0.1:9/b")
    with session_scope() as session:
        session.execute(
            insert(delivery_rollups),
            [
                _rollup(mine, ROLLUP_MINUTE_S, T0 + timedelta(minutes=1), 5, 4),
                _rollup(mine, ROLLUP_MINUTE_S, T0 + timedelta(minutes=3), 2, 0),
                _rollup(mine, ROLLUP_MINUTE_S, T0 + timedelta(minutes=9), 7, 7),  # after `now`
                _rollup(mine, ROLLUP_HOUR_S, T0, 14, 11),  # an hour row is not a minute
                _rollup(other, ROLLUP_MINUTE_S, T0 + timedelta(minutes=2), 9, 9),
            ],
        )
    with session_scope() as session:
        minutes = deliveries_per_minute(
            session,
            mine,
            scope=tenant.application_id,
            since=T0 + timedelta(seconds=30),
            now=T0 + timedelta(minutes=4, seconds=59),
        )
        with pytest.raises(NotFoundError):
            deliveries_per_minute(session, other, scope=tenant.application_id, since=T0)
    assert [(m.start.minute, m.attempts, m.succeeded, m.failed) for m in minutes] == [
        (0, 0, 0, 0),
        (1, 5, 4, 1),
        (2, 0, 0, 0),
        (3, 2, 0, 2),
        (4, 0, 0, 0),
    ]


def test_deliveries_newest_first_page_by_page_within_the_scope():
    tenant = make_tenant("acme")
    mine, _ = add_endpoint(
        "http://127.0.0.1:9/a", application_id=tenant.application_id, contracts=[address(51)]
    )
    add_endpoint("http://127.0.0.1:9/b", contracts=[address(51)])
    events = [transfer(contract=address(51), block=1 + i, log_index=0, value=i) for i in range(5)]
    with session_scope() as session:
        store_and_match(session, events, utcnow())
    with session_scope() as session:
        scope = tenant.application_id
        first = list_deliveries(session, DeliveryFilter(), scope=scope, limit=3, newest_first=True)
        second = list_deliveries(
            session,
            DeliveryFilter(),
            scope=scope,
            cursor=first.next_cursor,
            limit=3,
            newest_first=True,
        )
        everyone = list_deliveries(
            session, DeliveryFilter(), scope=None, limit=100, newest_first=True
        )
    ids = [d.id for d in first.items + second.items]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True)
    assert {d.endpoint_id for d in first.items + second.items} == {mine}
    assert second.next_cursor is None
    assert len(everyone.items) == 10
