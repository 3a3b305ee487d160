"""Times users type (`--since`, `?since=`): ISO 8601, read as UTC when no offset is given."""

from __future__ import annotations

from datetime import UTC, datetime

from ethhook.exceptions import InputError

EXAMPLE = "2026-11-27T08:00:00Z"


def parse_since(text: str, what: str = "--since") -> datetime:
    """`text` as an aware UTC datetime; InputError naming `what` when it is not ISO 8601 or falls
    outside the years 1 to 9999 once in UTC."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"invalid {what} {text[:60]!r}: expected ISO 8601, e.g. {EXAMPLE}"
        ) from None
    try:
        # In UTC, as the database compares it: 9999-12-31T23:00-05:00 is past the last datetime.
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise InputError(
            f"invalid {what} {text[:60]!r}: in UTC it falls outside the years 1 to 9999"
        ) from None
