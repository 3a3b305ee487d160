"""What the `ethhook` commands print: tables, summaries of endpoint changes, argument checks."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from ethhook.cli.common import non_negative_int, number, positive_int, since
from ethhook.cli.endpoints import change_summary
from ethhook.cli.output import table
from ethhook.exceptions import InputError

BEYOND = "99999999999999999999999"  # more than 64 bits


def test_a_change_without_a_secret_is_one_line():
    data = {"id": 3, "active": False}
    assert change_summary(3, "disabled", data, reveal_secret=False) == "disabled endpoint 3"


def test_a_rotation_shows_the_new_secret_and_when_the_old_one_stops_signing():
    expires = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    data = {
        "id": 3,
        "signing": "hmac",
        "secret": "whsec_bmV3",
        "previous_secret_expires_at": expires,
    }
    assert change_summary(3, "rotated the secret of", data, reveal_secret=True) == (
        "rotated the secret of endpoint 3\n"
        "secret: whsec_bmV3\n"
        "the previous secret keeps signing until 2026-12-02T09:30:00Z"
    )


def test_an_ed25519_rotation_shows_the_new_public_key_never_a_secret():
    expires = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    data = {
        "id": 3,
        "signing": "ed25519",
        "secret": None,
        "public_key": "whpk_bmV3",
        "previous_secret_expires_at": expires,
    }
    assert change_summary(3, "rotated the secret of", data, reveal_secret=True) == (
        "rotated the secret of endpoint 3\n"
        "public key: whpk_bmV3\n"
        "the previous key pair keeps signing until 2026-12-02T09:30:00Z"
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
        (positive_int, "1.0", "expected a positive integer, got '1.0'"),
        (positive_int, "nan", "expected a positive integer, got 'nan'"),
        (positive_int, BEYOND, f"'{BEYOND}' is out of range (at most {2**63 - 1})"),
        (non_negative_int, str(2**63), f"'{2**63}' is out of range (at most {2**63 - 1})"),
        # More digits than int() converts: refused like any other bad count, quoted short.
        (positive_int, "9" * 5000, f"expected a positive integer, got '{'9' * 40}'"),
        (number, "nan", "expected a finite number, got 'nan'"),
        (number, "inf", "expected a finite number, got 'inf'"),
        (number, "-inf", "expected a finite number, got '-inf'"),
        (number, "1e999", "expected a finite number, got '1e999'"),
        (number, "fast", "expected a finite number, got 'fast'"),
        # ASCII digits only: int() and float() also read other scripts' digits and underscores.
        (positive_int, "\u0661\u0662", "expected a positive integer, got '\u0661\u0662'"),
        (positive_int, "\uff11", "expected a positive integer, got '\uff11'"),
        (positive_int, "1_000", "expected a positive integer, got '1_000'"),
        (positive_int, " 7 ", "expected a positive integer, got ' 7 '"),
        (number, "\u0661.5", "expected a finite number, got '\u0661.5'"),
        (number, "1_0", "expected a finite number, got '1_0'"),
        (number, "infinity", "expected a finite number, got 'infinity'"),
    ],
)
def test_a_bad_count_is_refused_with_what_was_expected(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as exc:
        parse(text)
    assert str(exc.value) == message


def test_counts_in_range_are_accepted():
    assert (positive_int("1"), non_negative_int("0")) == (1, 0)
    assert (positive_int(str(2**63 - 1)), non_negative_int(str(2**63 - 1))) == (2**63 - 1,) * 2
    assert (number("1e300"), number("-0.5")) == (1e300, -0.5)


@pytest.mark.parametrize(
    "text",
    ["yesterday", "9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00", "2026-13-01"],
)
def test_a_since_that_is_no_utc_datetime_is_refused(text):
    with pytest.raises(InputError, match="invalid --since"):
        since(text)


def test_since_is_read_as_utc():
    assert since("2026-11-27T08:00:00Z") == datetime(2026, 11, 27, 8, tzinfo=UTC)
    assert since("2026-11-27T09:00:00+01:00") == datetime(2026, 11, 27, 8, tzinfo=UTC)
    assert since("2026-11-27") == datetime(2026, 11, 27, tzinfo=UTC)
