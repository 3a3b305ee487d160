"""One window of signed POSTs sent at once, each within the endpoint's cap on requests in flight."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from ethhook import __version__
from ethhook.config import Settings
from ethhook.db.models import utcnow
from ethhook.deliver import http
from ethhook.deliver.beside import green
from ethhook.deliver.protect import OrderedSlots
from ethhook.deliver.signing import webhook_headers
from ethhook.deliver.store import EndpointView, Result, Work
from ethhook.redact import redact_in

log = logging.getLogger(__name__)

USER_AGENT = f"EthHook/{__version__}"


def send(
    endpoint: EndpointView, work: Work, settings: Settings, slot: OrderedSlots, priority: float
) -> Result:
    with slot.held(priority):  # the endpoint's cap on requests in flight from this process
        started_at = utcnow()
        headers = webhook_headers(
            endpoint.keys, work.webhook_id, int(started_at.timestamp()), work.body, USER_AGENT
        )
        outcome = _post(endpoint, work, headers, settings)
    return Result(work, started_at, outcome)


def _post(
    endpoint: EndpointView, work: Work, headers: dict[str, str], settings: Settings
) -> http.HttpOutcome:
    context = f"endpoint={endpoint.id} delivery={work.delivery_id}"
    return post_guarded(endpoint.url, work.body, headers, settings, context)


def post_guarded(
    url: str, body: bytes, headers: dict[str, str], settings: Settings, context: str
) -> http.HttpOutcome:
    """http.post with the delivery timeouts and SSRF setting, and an outcome whatever it raises:
    one request's error fails its attempt only, not its window (whose other answers would be
    lost with it, and the deliveries re-sent). `context` names it in the log line."""
    started = time.perf_counter()
    try:
        return http.post(
            url,
            body,
            headers,
            settings.delivery_connect_timeout_s,
            settings.delivery_read_timeout_s,
            allow_private=settings.allow_private_targets,
        )
    except Exception as exc:  # noqa: BLE001 (the attempt's error; logged with its traceback)
        shown = redact_in(f"{type(exc).__name__}: {exc}", url)
        log.error(
            "deliver.request.unexpected %s error=%s\n%s",
            context,
            shown,
            redact_in("".join(traceback.format_exception(exc)).rstrip(), url),
        )
        return http.HttpOutcome(
            None, (time.perf_counter() - started) * 1000, error=f"request failed: {shown[:300]}"
        )


def in_parallel(fn: Callable[[Work], Result], items: Sequence[Work]) -> list[Result]:
    """fn over items at once, results in order: greenlets under a gevent pool, else threads."""
    if len(items) <= 1:
        return [fn(item) for item in items]
    if green():
        import gevent

        # One greenlet per request, all waited for before an error is raised (none is left
        # sending unrecorded); ~3 µs per request less than Group.imap's mapping machinery.
        greenlets = [gevent.spawn(fn, item) for item in items]
        gevent.joinall(greenlets)
        return [greenlet.get() for greenlet in greenlets]  # the first error, with its traceback
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(fn, items))


def send_window(
    endpoint: EndpointView,
    window: Sequence[Work],
    settings: Settings,
    slot: OrderedSlots,
    priority: float,
) -> list[Result]:
    """Send the window at once; its requests wait for the endpoint's slots in `priority` order
    (the task's start: the oldest task of an endpoint is served first)."""
    return in_parallel(lambda item: send(endpoint, item, settings, slot, priority), window)
