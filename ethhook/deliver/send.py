"""One window of signed POSTs sent at once, each within the endpoint's cap on requests in flight."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar, cast

from ethhook import __version__
from ethhook.config import Settings
from ethhook.db.models import utcnow
from ethhook.deliver import http
from ethhook.deliver.beside import green
from ethhook.deliver.inflight import OrderedSlots
from ethhook.deliver.signing import webhook_headers
from ethhook.deliver.store import EndpointView, Result, Work

USER_AGENT = f"EthHook/{__version__}"
T = TypeVar("T")
R = TypeVar("R")


def send(
    endpoint: EndpointView, work: Work, settings: Settings, slot: OrderedSlots, priority: float
) -> Result:
    with slot.held(priority):  # the endpoint's cap on requests in flight from this process
        started_at = utcnow()
        headers = webhook_headers(
            endpoint.secrets, work.webhook_id, int(started_at.timestamp()), work.body, USER_AGENT
        )
        outcome = http.post(
            endpoint.url,
            work.body,
            headers,
            settings.delivery_connect_timeout_s,
            settings.delivery_read_timeout_s,
            allow_private=settings.allow_private_targets,
        )
    return Result(work, started_at, outcome)


def in_parallel(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """fn over items at once, results in order: greenlets under a gevent pool, else threads."""
    if len(items) <= 1:
        return [fn(item) for item in items]
    if green():
        from gevent.pool import Group

        return list(Group().imap(fn, items))
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(fn, items))


def send_window(
    endpoint: EndpointView,
    window: Sequence[Work],
    settings: Settings,
    slot: OrderedSlots,
    priority: float,
    meanwhile: Callable[[], None] | None = None,
) -> list[Result]:
    """Send the window at once; its requests wait for the endpoint's slots in `priority` order
    (the task's start: the oldest task of an endpoint is served first). `meanwhile` (loading the
    next bodies) runs beside the requests under gevent, after them elsewhere (deliver.beside); an
    error in it is raised once the requests have all ended."""
    jobs: list[Callable[[], Result | None]] = [
        partial(send, endpoint, item, settings, slot, priority) for item in window
    ]
    if meanwhile is not None and green():
        jobs.append(meanwhile)
    done = in_parallel(lambda job: job(), jobs)
    if meanwhile is not None and not green():
        meanwhile()
    return cast(list[Result], done[: len(window)])
