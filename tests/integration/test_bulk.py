"""insert_ignoring_conflicts on PostgreSQL: shared values sent once, every row stored as given."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from ethhook.db import session_scope
from ethhook.db.bulk import insert_ignoring_conflicts
from ethhook.db.models import Delivery, utcnow
from ethhook.db.partition_plan import event_time
from ethhook.workqueue import delivery_row, store_events
from ethhook.workqueue.rows import DELIVERY_KEY
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer

COLUMNS = ("endpoint_id", "event_id", "kind", "status", "attempts", "next_attempt_at")
COLUMNS += ("release_block", "lease_token", "lease_expires_at", "created_at", "updated_at")


@pytest.mark.usefixtures("db")
def test_rows_with_shared_and_differing_values_are_stored_as_given_and_only_once():
    endpoint = add_endpoint("http://127.0.0.1:1/a", contracts=[address(1)])[0]
    events = [transfer(contract=address(1), block=5, log_index=i, value=i) for i in range(3)]
    now = utcnow()
    with session_scope() as session:
        store_events(session, events, now)
    later = now + timedelta(seconds=30)
    at = event_time(events[0].block_timestamp)  # the partition key: the block's time
    rows = [
        delivery_row(endpoint, events[0].event_id, "instant", "pending", now, event_at=at, next_attempt_at=now),
        delivery_row(endpoint, events[1].event_id, "instant", "pending", now, event_at=at, next_attempt_at=now),
        # Differs from the others in its status, next attempt, release block and token.
        delivery_row(
            endpoint, events[2].event_id, "confirmed", "waiting", now, event_at=at,
            release_block=17, token="m-x", lease_expires_at=later,
        ),
    ]  # fmt: skip

    with session_scope() as session:
        first = insert_ignoring_conflicts(session, Delivery, rows, DELIVERY_KEY, ["id"])
        again = insert_ignoring_conflicts(session, Delivery, rows, DELIVERY_KEY, ["id"])
    with session_scope() as session:
        stored = session.execute(select(*(getattr(Delivery, c) for c in COLUMNS))).all()

    assert len(first) == 3
    assert again == []
    assert sorted(tuple(r) for r in stored) == sorted(tuple(r[c] for c in COLUMNS) for r in rows)


TEXTS = ['a "quoted" word', "back\\slash", "{braces}, commas", "NULL", "", " spaced ", "ü €", "'"]


@pytest.mark.usefixtures("db")
@pytest.mark.parametrize(
    ("sql_type", "values"),
    [
        ("text", [*TEXTS, None]),
        ("bigint", [0, -1, 2**62, None]),
        ("double precision", [0.5, -1e-300, 1e300, float("inf"), float("-inf")]),
        ("boolean", [True, False, None]),
        ("timestamptz", [utcnow(), utcnow() - timedelta(days=400, microseconds=1), None]),
    ],
)
def test_an_array_sent_as_one_literal_reads_back_value_for_value(sql_type, values):
    from sqlalchemy import text

    from ethhook.db.arrays import array_literal

    literal = array_literal(values)
    assert isinstance(literal, str)
    with session_scope() as session:
        back = session.execute(
            text(f"SELECT CAST(:v AS {sql_type}[])"), {"v": literal}
        ).scalar_one()
    assert back == values


def test_values_without_a_plain_text_form_stay_a_list():
    from ethhook.db.arrays import array_literal

    assert array_literal([b"\x00", b"x"]) == [b"\x00", b"x"]
    assert array_literal([["a"], ["b"]]) == [["a"], ["b"]]


def test_enum_members_are_sent_as_their_values():
    from enum import IntEnum, StrEnum

    from ethhook.db.arrays import array_literal

    class Word(StrEnum):
        QUOTE = 'a "b"'

    class Number(IntEnum):
        SEVEN = 7

    assert array_literal([Word.QUOTE, Number.SEVEN, True]) == '{"a \\"b\\"",7,t}'
