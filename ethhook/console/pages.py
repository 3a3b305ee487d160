"""The console's pages (GET): endpoints, one endpoint, one delivery, failed deliveries, a replay,
the application (its ops endpoint and operational webhooks)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import redis
from fastapi import APIRouter, Request, Response

from ethhook.config import Settings
from ethhook.console.chart import minute_chart
from ethhook.console.web import (
    ConsoleRoute,
    as_visitor,
    check_id,
    console_of,
    current_session,
    parse_id,
    redirect,
    render,
    signed_in,
)
from ethhook.db.models import DeliveryStatus, utcnow
from ethhook.deliver.protect import redis_client
from ethhook.exceptions import NotFoundError
from ethhook.replay.jobs import get_replay
from ethhook.service.apps import get_application, target_application
from ethhook.service.deliveries import (
    RETRYABLE,
    DeliveryFilter,
    list_deliveries,
    show_delivery,
)
from ethhook.service.endpoints import (
    breaker_state,
    get_endpoint,
    list_endpoints,
    show_endpoint,
)
from ethhook.service.ops import get_ops_endpoint, list_ops_messages
from ethhook.service.public import Endpoint
from ethhook.service.stats import EndpointStats, deliveries_per_minute, delivery_stats

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

STATS_WINDOW = timedelta(hours=24)
CHART_MINUTES = 60
RECENT_DELIVERIES = 20
PAGE_SIZE = 50


@dataclass(frozen=True)
class EndpointRow:
    """An endpoint in the list: its state, its breaker and its last 24 hours."""

    endpoint: Endpoint
    breaker: str
    stats: EndpointStats | None


@router.get("/")
def index(request: Request) -> Response:
    return redirect("/endpoints" if current_session(request).session_id else "/sign-in")


@router.get("/sign-in")
def sign_in_page(request: Request) -> Response:
    return render(request, "sign_in.html", error=None)


@router.get("/endpoints")
def endpoints_page(request: Request) -> Response:
    settings = console_of(request).settings
    with signed_in(request) as (db, visitor):
        page = list_endpoints(
            db,
            scope=visitor.principal.scope,
            cursor=request.query_params.get("cursor"),
            limit=PAGE_SIZE,
        )
        ids = [e.id for e in page.items]
        since = utcnow() - STATS_WINDOW
        stats = {s.endpoint_id: s for s in delivery_stats(db, since, endpoint_ids=ids)}
    breakers = _breakers(ids, settings)
    rows = [EndpointRow(e, breakers[e.id], stats.get(e.id)) for e in page.items]
    return render(request, "endpoints.html", rows=rows, next_cursor=page.next_cursor)


def _breakers(endpoint_ids: list[int], settings: Settings) -> dict[int, str]:
    """Each endpoint's breaker; Redis is asked once first, so that a Redis outage costs one
    timeout for the page rather than one per endpoint."""
    try:
        redis_client(settings.redis_url).ping()
    except redis.RedisError as exc:
        return dict.fromkeys(endpoint_ids, f"unknown (Redis unreachable: {exc})")
    return {i: breaker_state(i, settings) for i in endpoint_ids}


@router.get("/endpoints/{endpoint_id:int}")
def endpoint_page(request: Request, endpoint_id: int) -> Response:
    settings = console_of(request).settings
    check_id(endpoint_id, "endpoint")
    now = utcnow()
    with signed_in(request) as (db, visitor):
        scope = visitor.principal.scope
        details = show_endpoint(db, endpoint_id, scope=scope)
        stats = delivery_stats(db, now - STATS_WINDOW, now, endpoint_ids=[endpoint_id])
        minutes = deliveries_per_minute(
            db,
            endpoint_id,
            scope=scope,
            since=now - timedelta(minutes=CHART_MINUTES - 1),
            now=now,
        )
        recent = list_deliveries(
            db,
            DeliveryFilter(endpoint_id=endpoint_id),
            scope=scope,
            limit=RECENT_DELIVERIES,
            newest_first=True,
        )
    endpoint = details.endpoint
    return render(
        request,
        "endpoint.html",
        endpoint=endpoint,
        counts=details.deliveries,
        breaker=breaker_state(endpoint_id, settings),
        stats=stats[0] if stats else None,
        chart=minute_chart(minutes),
        recent=recent.items,
        chains=[settings.chain_name(c) for c in endpoint.chains],
        schedule=endpoint.retry_schedule or list(settings.retry_schedule_s),
        default_schedule=endpoint.retry_schedule is None,
    )


@router.get("/deliveries/{delivery_id:int}")
def delivery_page(request: Request, delivery_id: int) -> Response:
    check_id(delivery_id, "delivery")
    details = as_visitor(request, show_delivery, delivery_id)
    delivery, retryable = details.delivery, details.delivery.status in RETRYABLE
    return render(
        request, "delivery.html", delivery=delivery, attempts=details.attempts, retryable=retryable
    )


@router.get("/failed")
def failed_page(request: Request) -> Response:
    endpoint_id = parse_id(request.query_params.get("endpoint"), "endpoint")
    with signed_in(request) as (db, visitor):
        scope = visitor.principal.scope
        if endpoint_id is not None:
            get_endpoint(db, endpoint_id, scope=scope)  # another application's: the 404 page
        page = list_deliveries(
            db,
            DeliveryFilter(status=DeliveryStatus.FAILED, endpoint_id=endpoint_id),
            scope=scope,
            cursor=request.query_params.get("cursor"),
            limit=PAGE_SIZE,
            newest_first=True,
        )
    failed, next_cursor = page.items, page.next_cursor
    return render(
        request, "failed.html", deliveries=failed, next_cursor=next_cursor, endpoint_id=endpoint_id
    )


@router.get("/replays/{job_id:int}")
def replay_page(request: Request, job_id: int) -> Response:
    check_id(job_id, "replay job")
    job = as_visitor(request, get_replay, job_id)
    shown = job.as_public(console_of(request).settings)
    return render(request, "replay.html", job=shown, finished=job.finished, progress=job.progress)


@router.get("/application")
def application_page(request: Request) -> Response:
    """The visitor's application (the operator names one with ?id=, else `default`): its ops
    endpoint and the operational webhooks sent to it, newest first."""
    wanted = parse_id(request.query_params.get("id"), "application")
    with signed_in(request) as (db, visitor):
        scope = visitor.principal.scope
        app_id = target_application(db, wanted, scope=scope)
        application = get_application(db, app_id, scope=scope)
        try:
            ops_endpoint = get_ops_endpoint(db, app_id, scope=scope)
        except NotFoundError:
            ops_endpoint = None
        messages = list_ops_messages(db, app_id, PAGE_SIZE, scope=scope)
    return render(
        request,
        "application.html",
        application=application,
        ops_endpoint=ops_endpoint,
        messages=messages,
    )
