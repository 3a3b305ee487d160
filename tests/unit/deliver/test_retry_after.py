"""Retry-After as receivers really send it: parsed strictly (RFC 9110), anything else ignored."""

import pytest

from ethhook.deliver.protect.retry import MAX_RETRY_AFTER_S, parse_retry_after

NOW = 1795748400.0  # Thu, 27 Nov 2026 03:00:00 GMT


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("0", 0.0),
        ("120", 120.0),
        ("\t7 ", 7.0),  # optional whitespace around the value
        ("0007", 7.0),
        ("86400", MAX_RETRY_AFTER_S),
        ("9" * 40, MAX_RETRY_AFTER_S),  # absurdly far: the cap
        ("Thu, 27 Nov 2026 03:01:00 GMT", 60.0),  # IMF-fixdate
        ("Thursday, 27-Nov-26 03:01:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Thu Nov 27 03:01:00 2026", 60.0),  # asctime: no zone, read as GMT
        ("Thu, 27 Nov 2026 03:01:00 -0000", 60.0),  # "-0000" is GMT too, not local time
        ("Sun, 01 Jan 2040 00:00:00 GMT", MAX_RETRY_AFTER_S),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # past: no wait beyond the schedule's
    ],
)
def test_valid_values(header, expected):
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize(
    "header",
    [
        "\u00b2",  # byte 0xB2 read as latin-1: str.isdigit() says yes, float() says no
        "1\u00b2",
        "\u0663",  # ARABIC-INDIC DIGIT THREE: int() would read 3
        "\uff13\uff10",  # FULLWIDTH 30
        "3\u00a0",  # no-break space is not HTTP whitespace
        "-5",
        "+5",
        "1.5",
        "1e3",
        "1_000",
        "1, 2",  # two Retry-After headers joined by the client
        "9" * 65,
        "Thu, \u0663 Nov 2026 03:01:00 GMT",
        "Thu, 27 Nov 2026 03:01:00 +99999999999999999",  # OverflowError in email.utils
        "Thu, 27 Nov 10000 03:01:00 GMT",
        "Thu, 27 Nov 2026 25:01:00 GMT",
        "soon",
        "",
        "   ",
        "\x00",
    ],
)
def test_anything_else_is_ignored_as_if_absent(header):
    assert parse_retry_after(header, NOW) is None
