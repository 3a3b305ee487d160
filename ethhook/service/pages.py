"""Cursor pagination: an opaque cursor (the last id seen) and a bounded page size."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ethhook.config import BIGINT_MAX
from ethhook.exceptions import InputError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Versioned so that the cursor's content may change without old cursors meaning something else.
_PREFIX = "v1:"
_LAST_ID = re.compile(r"[0-9]{1,19}")

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, in id order; `next_cursor` is None on the last page."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The id after which the page starts (0 for the first page)."""
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        text = ""
    digits = text.removeprefix(_PREFIX)
    if not text.startswith(_PREFIX) or not _LAST_ID.fullmatch(digits) or int(digits) > BIGINT_MAX:
        raise InputError(f"invalid cursor {cursor[:40]!r}: pass the next_cursor of a previous page")
    return int(digits)


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"invalid limit {limit}: expected 1 to {MAX_LIMIT}")
    return limit


def page_of(items: list[Any], limit: int) -> Page[Any]:
    """The page made of `items`, in id order, fetched with `limit + 1` rows to learn whether more
    follow (a last page never hands out a cursor to an empty one)."""
    if len(items) <= limit:
        return Page(items, None)
    items = items[:limit]
    return Page(items, encode_cursor(items[-1].id))
