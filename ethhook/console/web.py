"""What every console page shares: the session cookie, CSRF on every POST, templates, error pages.

`ConsoleRoute` wraps each route: it loads (or starts) the session, refuses a POST whose form lacks
the session's CSRF token (403), turns a missing or foreign resource into the 404 page and bad
input into the 400 page, writes the cookie back, and adds the security headers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio
from cryptography.fernet import Fernet
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.orm import Session

from ethhook.config import BIGINT_MAX, Settings
from ethhook.console import sessions, store
from ethhook.console.proxies import came_over_https
from ethhook.console.sessions import ConsoleSession
from ethhook.console.throttle import SignInThrottle
from ethhook.db import session_scope
from ethhook.db.models import utcnow
from ethhook.exceptions import InputError, NotFoundError
from ethhook.service.apps import Principal, get_application

log = logging.getLogger(__name__)

T = TypeVar("T")

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
MAX_FORM_BYTES = 16 * 1024
# A row id as typed: ASCII digits only (str.isdigit() also takes "²" and "٣"), at most BIGINT's 19.
ID_TEXT = re.compile(r"[0-9]{1,19}")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """No session, or its key no longer authenticates: go to the sign-in page."""


class CsrfRefused(Exception):
    """A POST without the session's CSRF token."""


@dataclass(frozen=True)
class Console:
    """The console's shared state, made once by `mount`."""

    settings: Settings
    cipher: Fernet
    templates: Environment
    throttle: SignInThrottle


@dataclass(frozen=True)
class Visitor:
    """Who is signed in: the principal of the key, and a name to show."""

    principal: Principal
    label: str


def make_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined
    )
    env.filters["when"] = format_time
    env.filters["percent"] = lambda v: "–" if v is None else f"{v:.1%}"
    env.filters["ms"] = lambda v: "–" if v is None else f"{v:,.0f} ms"
    env.filters["seconds"] = lambda values: ", ".join(f"{v:g}" for v in values) + " s"
    return env


def format_time(value: datetime | None) -> str:
    if value is None:
        return "–"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def console_of(request: Request) -> Console:
    console: Console = request.app.state.ethhook_console
    return console


def current_session(request: Request) -> ConsoleSession:
    session: ConsoleSession = request.state.console_session
    return session


def set_session(request: Request, session: ConsoleSession) -> None:
    """Replace the visitor's session; the cookie is written with the response."""
    request.state.console_session = session
    request.state.console_session_changed = True


def flash(request: Request, message: str) -> None:
    set_session(request, current_session(request).with_flash(message))


def form(request: Request) -> dict[str, str]:
    """The POSTed form (already read and CSRF-checked by ConsoleRoute)."""
    fields: dict[str, str] = request.state.console_form
    return fields


def parse_id(text: str | None, what: str) -> int | None:
    """An id from a query string or form field (None when absent); a bad one is a 400 page."""
    if text is None or text == "":
        return None
    if not ID_TEXT.fullmatch(text) or not 0 < int(text) <= BIGINT_MAX:
        raise InputError(f"invalid {what} {text[:40]!r}: expected a positive integer id")
    return int(text)


def check_id(value: int, what: str) -> int:
    """A path id (digits by the route's :int): one past the database's range cannot exist."""
    if not 0 < value <= BIGINT_MAX:
        raise NotFoundError(f"no {what} with id {value}")
    return value


@contextmanager
def signed_in(request: Request) -> Iterator[tuple[Session, Visitor]]:
    """A database session (committed at the end) and the signed-in visitor; SignInRequired when
    there is no session, or it ended (signed out, too old, unused too long, its key gone)."""
    session_id = current_session(request).session_id
    if session_id is None:
        raise SignInRequired
    settings = console_of(request).settings
    with session_scope() as db:
        principal = store.principal_of(db, session_id, settings, utcnow())
        if principal is None:
            raise SignInRequired
        visitor = Visitor(principal, _label(db, principal))
        request.state.console_visitor = visitor
        yield db, visitor


def as_visitor(request: Request, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`operation(session, *args, scope=<the signed-in visitor's>, **kwargs)` in one transaction
    (SignInRequired when no one is signed in)."""
    with signed_in(request) as (db, visitor):
        return operation(db, *args, scope=visitor.principal.scope, **kwargs)


def _label(db: Session, principal: Principal) -> str:
    if principal.application_id is None:
        return "operator"
    app = get_application(db, principal.application_id, scope=principal.scope)
    return f"{app.name} (application {app.id})"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """A page: the template with the CSRF token, the one-time message of the session and who
    is signed in (the visitor `signed_in` found, unless `visitor` is given)."""
    console = console_of(request)
    session = current_session(request)
    if session.flash is not None:
        set_session(request, session.with_flash(None))
    html = console.templates.get_template(template).render(
        csrf_token=session.csrf,
        flash_message=session.flash,
        visitor=context.pop("visitor", getattr(request.state, "console_visitor", None)),
        url=lambda path: "/console" + path,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def redirect(path: str) -> Response:
    """After a POST, the page to show (303: the browser GETs it)."""
    return RedirectResponse("/console" + path, status_code=303)


def error_page(request: Request, status_code: int, title: str, message: str) -> Response:
    return render(request, "error.html", status_code, visitor=None, title=title, message=message)


STALE_FORM = "The form was stale or not sent by this console: reload the page and try again."
# A form page shown again, as typed, with a message at its top: (request, form, message).
RefusedForm = Callable[[Request, dict[str, str], str], Response]


def shown_again_when_refused(page: RefusedForm) -> Callable[[T], T]:
    """A form route whose form, refused for its CSRF token, comes back as typed with the message
    above it (still 403, nothing done), instead of the error page."""

    def mark(endpoint: T) -> T:
        endpoint.console_refused_form = page  # type: ignore[attr-defined]
        return endpoint

    return mark


class ConsoleRoute(APIRoute):
    """Session, CSRF, error pages and headers around every console route."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        refused: RefusedForm | None = getattr(self.endpoint, "console_refused_form", None)

        async def route(request: Request) -> Response:
            response = await _guarded(handler, request, refused)
            if getattr(request.state, "console_session_changed", False):
                _write_cookie(request, response)
            response.headers.update(SECURITY_HEADERS)
            return response

        return route


async def _guarded(
    handler: Callable[[Request], Coroutine[Any, Any, Response]],
    request: Request,
    refused: RefusedForm | None,
) -> Response:
    console = console_of(request)
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    loaded = sessions.load(console.cipher, cookie, console.settings.console_session_lifetime_s)
    if loaded is None:
        set_session(request, ConsoleSession.fresh())
    else:
        request.state.console_session = loaded
    try:
        if request.method == "POST":
            request.state.console_form = await _read_form(request)
            if not current_session(request).token_matches(form(request).get("csrf_token")):
                raise CsrfRefused
        return await handler(request)
    except SignInRequired:
        if current_session(request).session_id is not None:
            set_session(request, ConsoleSession.fresh().with_flash("Your session ended."))
        return redirect("/sign-in")
    except CsrfRefused:
        log.info("console.csrf.refused path=%s", request.url.path)
        if refused is not None:
            try:
                return await anyio.to_thread.run_sync(refused, request, form(request), STALE_FORM)
            except (SignInRequired, InputError):
                pass  # signed out meanwhile, or the endpoint gone: the error page says enough
        return error_page(request, 403, "Forbidden", STALE_FORM)
    except NotFoundError as exc:
        return error_page(request, 404, "Not found", str(exc))
    except InputError as exc:
        return error_page(request, 400, "Cannot do that", str(exc))


async def _read_form(request: Request) -> dict[str, str]:
    """An urlencoded form of at most MAX_FORM_BYTES; anything else reads as empty (and so fails
    the CSRF check)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return {}


def _write_cookie(request: Request, response: Response) -> None:
    console = console_of(request)
    settings = console.settings
    response.set_cookie(
        sessions.COOKIE_NAME,
        sessions.dump(console.cipher, current_session(request)),
        max_age=int(settings.console_session_lifetime_s),
        path=sessions.COOKIE_PATH,
        secure=_secure_cookie(request, settings),
        httponly=True,
        samesite="strict",
    )


def _secure_cookie(request: Request, settings: Settings) -> bool:
    """ETHHOOK_CONSOLE_SECURE_COOKIE: true, false, or auto (whether the browser used HTTPS)."""
    if settings.console_secure_cookie == "auto":
        return came_over_https(request, settings.trusted_proxies)
    return settings.console_secure_cookie == "true"
