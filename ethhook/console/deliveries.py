"""The console's deliveries search: by status, time range, event type (the webhook's kind),
transaction hash and endpoint; and a bulk retry of what a search found, after a page that says
how many it sends again.

The filter is the service layer's DeliveryFilter (its checks, the visitor's scope); the retry is
retry_matching, as `ethhook delivery retry --status …` and POST /v1/deliveries/retry do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from ethhook.console.web import (
    ConsoleRoute,
    as_visitor,
    flash,
    form,
    parse_id,
    redirect,
    render,
    signed_in,
)
from ethhook.db.models import DeliveryStatus
from ethhook.exceptions import InputError
from ethhook.service.deliveries import (
    KINDS,
    RETRYABLE,
    DeliveryFilter,
    count_deliveries,
    list_deliveries,
    retry_matching,
)
from ethhook.service.rows import get_endpoint
from ethhook.service.times import parse_since
from ethhook.service.validation import about
from ethhook.workqueue import enqueue_groups

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

FIELDS = ("status", "since", "until", "kind", "tx", "endpoint")
PAGE_SIZE = 50


@dataclass(frozen=True)
class Search:
    """A search as typed (`values`), and the filter it means."""

    values: dict[str, str]
    where: DeliveryFilter

    @property
    def query(self) -> str:
        return urlencode({k: v for k, v in self.values.items() if v})

    @property
    def retryable(self) -> bool:
        """A bulk retry names a status (the service's rule) that can be sent again."""
        return self.where.status in RETRYABLE


def read_search(given: Mapping[str, str]) -> Search:
    """The search in a query string or form; InputError naming the field that is wrong."""
    values = {k: given.get(k, "").strip()[:100] for k in FIELDS}
    with about("since"):
        since = parse_since(values["since"], "from") if values["since"] else None
    with about("until"):
        until = parse_since(values["until"], "to") if values["until"] else None
    with about("endpoint"):
        endpoint_id = parse_id(values["endpoint"], "endpoint")
    with about("status"):
        DeliveryFilter(status=values["status"] or None)
    with about("kind"):
        DeliveryFilter(kind=values["kind"] or None)
    with about("tx"):
        DeliveryFilter(tx_hash=values["tx"] or None)
    where = DeliveryFilter(
        status=values["status"] or None,
        endpoint_id=endpoint_id,
        since=since,
        until=until,
        kind=values["kind"] or None,
        tx_hash=values["tx"] or None,
    )
    return Search(values, where)


def _page(request: Request, template: str, search: Search | None, **context: Any) -> Response:
    return render(
        request,
        template,
        search=search,
        statuses=DeliveryStatus.ALL,
        kinds=KINDS,
        **context,
    )


@router.get("/deliveries")
def search_page(request: Request) -> Response:
    try:
        search = read_search(request.query_params)
    except InputError as exc:
        values = {k: request.query_params.get(k, "")[:100] for k in FIELDS}
        errors = {exc.field or "form": str(exc)}
        return _page(request, "deliveries.html", None, values=values, errors=errors, found=None)
    with signed_in(request) as (db, visitor):
        scope = visitor.principal.scope
        if search.where.endpoint_id is not None:
            get_endpoint(db, search.where.endpoint_id, scope=scope)  # another's: the 404 page
        found = list_deliveries(
            db,
            search.where,
            scope=scope,
            cursor=request.query_params.get("cursor"),
            limit=PAGE_SIZE,
            newest_first=True,
        )
        total = count_deliveries(db, search.where, scope=scope)
    return _page(
        request,
        "deliveries.html",
        search,
        values=search.values,
        errors={},
        found=found,
        total=total,
    )


@router.get("/deliveries/retry")
def confirm_retry(request: Request) -> Response:
    search = read_search(request.query_params)  # a bad one: the 400 page
    if not search.retryable:
        raise InputError("choose a status (pending, failed or succeeded) to retry what it finds")
    total = as_visitor(request, count_deliveries, search.where)
    return _page(request, "deliveries_retry.html", search, total=total)


@router.post("/deliveries/retry")
def retry(request: Request) -> Response:
    search = read_search(form(request))
    if not search.retryable:
        raise InputError("choose a status (pending, failed or succeeded) to retry what it finds")
    plan = as_visitor(request, retry_matching, search.where)
    enqueued = enqueue_groups(plan.groups)
    noun = "delivery" if plan.count == 1 else "deliveries"
    if plan.count and not enqueued:
        flash(request, f"Retrying {plan.count} {noun}: they go out when the broker is back.")
    else:
        flash(request, f"Retrying {plan.count} {noun} now.")
    return redirect("/deliveries?" + search.query)
