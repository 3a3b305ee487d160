"""What an endpoint's finality and lifecycle make of one event (match.finality), as tables."""

from __future__ import annotations

import pytest

from ethhook.match.finality import Heights, Release, delivery_kinds, parse_mode, release_of

INSTANT, CONFIRMED = "event.instant", "event.confirmed"


@pytest.mark.parametrize(
    ("confirmations", "finality", "lifecycle", "kinds"),
    [
        (0, "latest", False, (INSTANT,)),
        (5, "latest", False, (CONFIRMED,)),
        (0, "safe", False, (CONFIRMED,)),
        (0, "finalized", False, (CONFIRMED,)),
        (0, "latest", True, (INSTANT, CONFIRMED)),
        (5, "latest", True, (INSTANT, CONFIRMED)),
        (0, "finalized", True, (INSTANT, CONFIRMED)),
    ],
)
def test_delivery_kinds(confirmations, finality, lifecycle, kinds):
    assert delivery_kinds(confirmations, finality, lifecycle) == kinds


@pytest.mark.parametrize(
    ("mode", "parsed"),
    [
        (None, ("latest", False, False)),
        ("latest", ("latest", False, False)),
        ("finalized", ("finalized", False, False)),
        ("safe+lifecycle", ("safe", True, False)),
        ("latest+lifecycle", ("latest", True, False)),
        ("latest+ordered", ("latest", False, True)),
        ("safe+lifecycle+ordered", ("safe", True, True)),
    ],
)
def test_parse_mode(mode, parsed):
    assert parse_mode(mode) == parsed


def test_release_of():
    assert release_of(100, 12, "latest") == Release(112, None)
    assert release_of(100, 0, "safe") == Release(100, "safe")
    assert release_of(100, 0, "finalized") == Release(100, "finalized")


@pytest.mark.parametrize(
    ("heights", "release", "reached"),
    [
        (Heights(112), Release(112, None), True),
        (Heights(111), Release(112, None), False),
        (Heights(None), Release(1, None), False),
        (Heights(200, safe=100), Release(100, "safe"), True),
        (Heights(200, safe=99), Release(100, "safe"), False),
        (Heights(200, safe=150), Release(100, "finalized"), False),  # no finalized known
        (Heights(99, finalized=150), Release(100, "finalized"), False),  # cursor below it
        (Heights(100, finalized=150), Release(100, "finalized"), True),
        (Heights(None, finalized=150), Release(100, "finalized"), False),
    ],
)
def test_heights_reached(heights, release, reached):
    assert heights.reached(release) is reached
