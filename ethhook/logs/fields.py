"""The ids a log line is about: given with `extra=`, bound for a block of work, or found by a source."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

# The fields a JSON line may carry besides ts, level, logger, msg and process, in this order.
FIELDS = (
    "chain",
    "endpoint_id",
    "delivery_id",
    "webhook_id",
    "event_id",
    "app_id",
    "task",
    "task_id",
    "request_id",
)

FieldSource = Callable[[logging.LogRecord], Mapping[str, Any]]

_bound: ContextVar[Mapping[str, Any]] = ContextVar(
    "ethhook_log_fields", default=MappingProxyType({})
)
_sources: list[FieldSource] = []


def _checked(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown log fields {sorted(unknown)}; known: {', '.join(FIELDS)}")
    return dict(fields)


@contextmanager
def log_fields(**fields: Any) -> Iterator[None]:
    """Every line logged inside the block (in this thread, task or greenlet) carries `fields`."""
    token = _bound.set(MappingProxyType({**_bound.get(), **_checked(fields)}))
    try:
        yield
    finally:
        _bound.reset(token)


def bind_fields(**fields: Any) -> None:
    """Every line logged from now on in the current context carries `fields` (an asyncio task's,
    a request's after authentication: their context ends with them)."""
    _bound.set(MappingProxyType({**_bound.get(), **_checked(fields)}))


def add_field_source(source: FieldSource) -> None:
    """Fields found for any record (a Celery worker's current task), below bound and given ones."""
    if source not in _sources:
        _sources.append(source)


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The record's fields, in FIELDS order: given with `extra=`, else bound, else from a source."""
    found: dict[str, Any] = {}
    for source in _sources:
        found.update(source(record))
    found.update(_bound.get())
    given = record.__dict__
    for name in FIELDS:
        if given.get(name) is not None:
            found[name] = given[name]
    return {name: found[name] for name in FIELDS if found.get(name) is not None}
