"""Cursor pagination: cursors round-trip, and anything else is one clear InputError."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ethhook.exceptions import InputError
from ethhook.service.pages import MAX_LIMIT, check_limit, decode_cursor, encode_cursor, page_of


@pytest.mark.parametrize("last_id", [1, 7, 10**6, 2**63 - 1])
def test_a_cursor_round_trips_and_is_opaque(last_id):
    cursor = encode_cursor(last_id)
    assert decode_cursor(cursor) == last_id
    assert str(last_id) not in cursor and "=" not in cursor


def test_no_cursor_is_the_first_page():
    assert decode_cursor(None) == 0


@pytest.mark.parametrize(
    "cursor", ["", "abc", "!!!!", encode_cursor(5)[:-1] + "*", "djE6LTE", "djE6eA", "MTI"]
)
def test_a_cursor_not_made_here_is_refused(cursor):
    with pytest.raises(InputError, match="invalid cursor"):
        decode_cursor(cursor)


def test_a_cursor_beyond_bigint_is_refused():
    with pytest.raises(InputError, match="invalid cursor"):
        decode_cursor(encode_cursor(2**63))


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1])
def test_a_limit_out_of_range_is_refused(limit):
    with pytest.raises(InputError, match="invalid limit"):
        check_limit(limit)


def test_a_page_hands_out_a_cursor_only_when_more_rows_follow():
    rows = [SimpleNamespace(id=i) for i in (3, 5, 8)]
    full = page_of(rows, 2)
    assert [r.id for r in full.items] == [3, 5] and decode_cursor(full.next_cursor) == 5
    last = page_of(rows, 3)
    assert len(last.items) == 3 and last.next_cursor is None
    assert page_of([], 3).next_cursor is None
