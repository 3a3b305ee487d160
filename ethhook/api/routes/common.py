"""What the resource modules share: path and query parameters, documented errors, settings."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request
from pydantic import BeforeValidator

from ethhook.api.auth import current_principal
from ethhook.api.problems import responses
from ethhook.config import BIGINT_MAX, Settings
from ethhook.db import session_scope
from ethhook.service.apps import Principal
from ethhook.service.pages import DEFAULT_LIMIT, MAX_LIMIT

_DIGITS = re.compile(r"[0-9]{1,20}")


def ascii_digits(value: object) -> object:
    """A number in a path or a query as plain ASCII digits: pydantic alone would also read
    `1_0`, `+5`, ` 5` or `5.0`."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("expected a whole number in ASCII digits (at most 20 of them)")
    return value


Digits = BeforeValidator(ascii_digits)
# Ids are BIGINTs at most: a larger one is refused here, before any query.
Id = Annotated[int, Digits, Path(ge=1, le=BIGINT_MAX, description="the resource's id")]
Limit = Annotated[int, Digits, Query(ge=1, le=MAX_LIMIT, description="items per page")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="`next_cursor` of the previous page")
]
Since = Annotated[
    str | None, Query(max_length=100, description="ISO 8601, e.g. 2026-11-27T08:00:00Z")
]
OptionalId = Annotated[int | None, Digits, Query(ge=1, le=BIGINT_MAX)]
# The authenticated caller (see auth.current_principal).
Caller = Annotated[Principal, Depends(current_principal)]
DEFAULT_PAGE = DEFAULT_LIMIT

# Every /v1 route may answer these (auth, rate limit, a database outage, bad input).
READ = responses(400, 401, 404, 422, 429, 503)
WRITE = responses(400, 401, 403, 404, 409, 413, 422, 429, 503)


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


T = TypeVar("T")


def in_session(operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`operation(session, *args, **kwargs)` in one transaction, committed before it returns
    (so that what a route enqueues next, or a client reads next, sees it)."""
    with session_scope() as session:
        return operation(session, *args, **kwargs)
