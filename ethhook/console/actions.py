"""The console's actions (POST forms, every one CSRF-checked by ConsoleRoute): sign in and out,
retry deliveries, enable or disable an endpoint, rotate its secret, send it a test webhook.

Each action calls the same service function as the CLI and the API; a retry enqueues its deliver
tasks only after the transaction that made the deliveries due has committed.
"""

from __future__ import annotations

import logging
import math

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from ethhook.console import store
from ethhook.console.proxies import client_address
from ethhook.console.sessions import ConsoleSession
from ethhook.console.throttle import Wait
from ethhook.console.web import (
    ConsoleRoute,
    as_visitor,
    check_id,
    console_of,
    current_session,
    flash,
    form,
    parse_id,
    redirect,
    render,
    set_session,
    signed_in,
)
from ethhook.db import session_scope
from ethhook.db.models import DeliveryStatus, utcnow
from ethhook.service.apps import authenticate
from ethhook.service.deliveries import DeliveryFilter, retry_deliveries, retry_matching
from ethhook.service.endpoints import rotate_secret, set_active
from ethhook.service.rows import get_endpoint
from ethhook.service.testsend import send_test_webhook
from ethhook.workqueue import enqueue_groups

log = logging.getLogger(__name__)

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

DISABLED_REASON = "disabled in the console"


@router.post("/sign-in")
def sign_in(request: Request) -> Response:
    console = console_of(request)
    address = client_address(request, console.settings.trusted_proxies)
    wait = console.throttle.wait(address)
    if wait.seconds > 0:
        return _throttled(request, address, wait)
    key = form(request).get("key", "").strip()
    with session_scope() as db:
        principal = authenticate(db, key)
        if principal is not None:
            session_id = _start_session(request, db, key)
    if principal is None:
        console.throttle.failed(address)
        log.info("console.sign_in.refused client=%s", address)
        error = "That key is not valid. Use an application's API key (ehk_…) or the operator key."
        return render(request, "sign_in.html", 401, error=error)
    # A new session (and CSRF token) on every sign-in: a token seen before it is worthless after.
    set_session(request, ConsoleSession.fresh(session_id))
    log.info(
        "console.sign_in application=%s",
        principal.application_id or "operator",
        extra={"app_id": principal.application_id},
    )
    return redirect("/endpoints")


def _start_session(request: Request, db: Session, key: str) -> str:
    """A new session for the key (its id); the visitor's session before it ends."""
    now = utcnow()
    previous = current_session(request).session_id
    if previous is not None:
        store.revoke(db, previous, now)
    return store.open_session(db, key, console_of(request).settings, now)


def _throttled(request: Request, address: str, wait: Wait) -> Response:
    seconds = max(1, math.ceil(wait.seconds))
    log.info("console.sign_in.throttled client=%s retry_after_s=%s", address, seconds)
    error = (
        f"Too many failed sign-ins from {wait.whose}: try again in {seconds} "
        f"second{'s' if seconds != 1 else ''}."
    )
    response = render(request, "sign_in.html", 429, error=error)
    response.headers["Retry-After"] = str(seconds)
    return response


@router.post("/sign-out")
def sign_out(request: Request) -> Response:
    session_id = current_session(request).session_id
    if session_id is not None:
        with session_scope() as db:
            store.revoke(db, session_id, utcnow())
    set_session(request, ConsoleSession.fresh().with_flash("Signed out."))
    return redirect("/sign-in")


@router.post("/endpoints/{endpoint_id:int}/enable")
def enable(request: Request, endpoint_id: int) -> Response:
    return _set_active(request, endpoint_id, True)


@router.post("/endpoints/{endpoint_id:int}/disable")
def disable(request: Request, endpoint_id: int) -> Response:
    return _set_active(request, endpoint_id, False)


def _set_active(request: Request, endpoint_id: int, active: bool) -> Response:
    check_id(endpoint_id, "endpoint")
    as_visitor(request, set_active, endpoint_id, active, None if active else DISABLED_REASON)
    flash(request, f"Endpoint {endpoint_id} {'enabled' if active else 'disabled'}.")
    return redirect(f"/endpoints/{endpoint_id}")


@router.post("/endpoints/{endpoint_id:int}/rotate-secret")
def rotate(request: Request, endpoint_id: int) -> Response:
    settings = console_of(request).settings
    check_id(endpoint_id, "endpoint")
    grace_s = settings.secret_rotation_grace_s
    rotated = as_visitor(request, rotate_secret, endpoint_id, grace_s)
    # Shown in this response only (never stored in the session, never cached: no-store).
    endpoint, secret = rotated.endpoint, rotated.secret
    return render(request, "secret.html", endpoint=endpoint, secret=secret, grace_s=grace_s)


@router.post("/endpoints/{endpoint_id:int}/test")
def send_test(request: Request, endpoint_id: int) -> Response:
    settings = console_of(request).settings
    check_id(endpoint_id, "endpoint")
    result = as_visitor(request, send_test_webhook, endpoint_id, settings=settings)
    return render(request, "test_result.html", endpoint_id=endpoint_id, result=result)


@router.post("/deliveries/{delivery_id:int}/retry")
def retry_one(request: Request, delivery_id: int) -> Response:
    check_id(delivery_id, "delivery")
    plan = as_visitor(request, retry_deliveries, [delivery_id])
    enqueued = enqueue_groups(plan.groups)
    flash(request, _retried(plan.count, enqueued))
    back = form(request).get("back")
    return redirect("/failed" if back == "failed" else f"/deliveries/{delivery_id}")


@router.post("/failed/retry")
def retry_failed(request: Request) -> Response:
    endpoint_id = parse_id(form(request).get("endpoint_id"), "endpoint")
    with signed_in(request) as (db, visitor):
        scope = visitor.principal.scope
        if endpoint_id is not None:
            get_endpoint(db, endpoint_id, scope=scope)  # another application's: the 404 page
        where = DeliveryFilter(status=DeliveryStatus.FAILED, endpoint_id=endpoint_id)
        plan = retry_matching(db, where, scope=scope)
    enqueued = enqueue_groups(plan.groups)
    flash(request, _retried(plan.count, enqueued))
    return redirect("/failed" if endpoint_id is None else f"/failed?endpoint={endpoint_id}")


def _retried(count: int, enqueued: int) -> str:
    if count == 0:
        return "No failed deliveries to retry."
    noun = "delivery" if count == 1 else "deliveries"
    if enqueued == 0:
        # The rows are due in the database; the due scan sends them when the broker is back.
        return f"Retrying {count} {noun}: the broker is unreachable, they go out when it is back."
    return f"Retrying {count} {noun} now."
