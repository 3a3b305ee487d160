"""What the resource modules share: path and query parameters, documented errors, the caller."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request
from pydantic import BeforeValidator

from ethhook.api.auth import current_principal
from ethhook.api.problems import responses
from ethhook.config import BIGINT_MAX, Settings
from ethhook.db import session_scope
from ethhook.service.apps import Principal
from ethhook.service.pages import DEFAULT_LIMIT, MAX_LIMIT, Page
from ethhook.service.scope import Scope

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

# Every /v1 route may answer these (auth, rate limit, a database outage, bad input).
READ = responses(400, 401, 404, 422, 429, 503)
WRITE = responses(400, 401, 403, 404, 409, 413, 422, 429, 503)

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """What every /v1 route works with: the authenticated caller and the API's settings."""

    principal: Principal
    settings: Settings

    @property
    def scope(self) -> Scope:
        return self.principal.scope

    def run(self, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`operation(session, *args, scope=<the caller's>, **kwargs)` in one transaction,
        committed before it returns (so that what a route enqueues next, or a client reads
        next, sees it)."""
        with session_scope() as session:
            return operation(session, *args, scope=self.scope, **kwargs)

    def page(
        self, operation: Callable[..., Page[Any]], which: PageQuery, *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        """A page of `operation`'s list as the API answers one: `data` and `next_cursor`."""
        page = self.run(operation, *args, cursor=which.cursor, limit=which.limit, **kwargs)
        return {"data": page.items, "next_cursor": page.next_cursor}


async def current_call(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> Call:
    """Async, as it only reads the request (see auth.current_principal)."""
    return Call(principal, request.app.state.settings)


# The authenticated caller (see auth.current_principal), with the settings.
Caller = Annotated[Call, Depends(current_call)]


@dataclass(frozen=True)
class PageQuery:
    """Which page of a list: `cursor` (the previous page's `next_cursor`) and `limit`."""

    cursor: str | None
    limit: int


async def page_query(cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT) -> PageQuery:
    return PageQuery(cursor, limit)


Paging = Annotated[PageQuery, Depends(page_query)]
