"""What the `ethhook` commands print: tables, summaries of endpoint changes, argument checks."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from ethhook.cli.common import non_negative_int, positive_int, table
from ethhook.cli.endpoints import change_summary


def test_a_change_without_a_secret_is_one_line():
    data = {"id": 3, "active": False}
    assert change_summary(3, "disabled", data, reveal_secret=False) == "disabled endpoint 3"


def test_a_rotation_shows_the_new_secret_and_when_the_old_one_stops_signing():
    expires = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    data = {"id": 3, "secret": "whsec_bmV3", "previous_secret_expires_at": expires}
    assert change_summary(3, "rotated the secret of", data, reveal_secret=True) == (
        "rotated the secret of endpoint 3\n"
        "secret: whsec_bmV3\n"
        "the previous secret keeps signing until 2026-12-02T09:30:00Z"
    )


def test_a_table_pads_its_columns_and_leaves_no_trailing_spaces():
    text = table([(1, "active", None), (12, "disabled", "x")], ("ID", "STATE", "LAST"))
    assert text.splitlines() == [
        "ID  STATE     LAST",
        "1   active",
        "12  disabled  x",
    ]


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (positive_int, "0", "expected a positive integer, got '0'"),
        (positive_int, "two", "expected a positive integer, got 'two'"),
        (non_negative_int, "-1", "expected an integer of 0 or more, got '-1'"),
    ],
)
def test_a_bad_count_is_refused_with_what_was_expected(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as exc:
        parse(text)
    assert str(exc.value) == message


def test_counts_in_range_are_accepted():
    assert (positive_int("1"), non_negative_int("0")) == (1, 0)
