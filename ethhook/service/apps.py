"""Applications (tenants) and their API keys, and the operator key that manages every one."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ethhook.db.models import DEFAULT_APPLICATION, ApiKey, ApiKeyRole, Application, Endpoint
from ethhook.exceptions import InputError, NotFoundError
from ethhook.service import public
from ethhook.service.keys import generate_key, hash_key, looks_like_key
from ethhook.service.pages import DEFAULT_LIMIT, Page, check_limit, decode_cursor, page_of
from ethhook.service.scope import Scope, require_operator, scoped
from ethhook.service.validation import check_text, column_length

MAX_APP_NAME_LENGTH = column_length(Application.name)


@dataclass(frozen=True)
class ApplicationWithKey:
    """An application just created or re-keyed, with its API key: the only time it is shown."""

    application: public.Application
    api_key: str

    def as_public(self) -> public.ApplicationWithKey:
        return public.ApplicationWithKey(**dict(self.application), api_key=self.api_key)


@dataclass(frozen=True)
class Principal:
    """Who an API key belongs to: an application, or the operator (application_id None)."""

    application_id: int | None

    @property
    def scope(self) -> Scope:
        return self.application_id

    @property
    def is_operator(self) -> bool:
        return self.application_id is None


def _check_name(name: str) -> str:
    name = check_text(name.strip(), "application name", MAX_APP_NAME_LENGTH)
    if not name:
        raise InputError("invalid application name: it is empty")
    return name


def _views(session: Session, apps: list[Application]) -> list[public.Application]:
    counts = dict(
        session.execute(
            select(Endpoint.application_id, func.count())
            .where(Endpoint.application_id.in_([a.id for a in apps]))
            .group_by(Endpoint.application_id)
        ).all()
    )
    return [
        public.Application(
            id=a.id, name=a.name, created_at=a.created_at, endpoints=counts.get(a.id, 0)
        )
        for a in apps
    ]


def _get(session: Session, application_id: int, scope: Scope) -> Application:
    query = scoped(
        select(Application).where(Application.id == application_id), Application.id, scope
    )
    app = session.scalar(query)
    if app is None:
        raise NotFoundError(f"no application with id {application_id} (see `ethhook app list`)")
    return app


def _new_key(session: Session, app: Application) -> str:
    """Replace the application's keys by a new one: the old key stops working at the commit."""
    session.execute(delete(ApiKey).where(ApiKey.application_id == app.id))
    key = generate_key()
    session.add(ApiKey(application_id=app.id, role=ApiKeyRole.APPLICATION, key_hash=hash_key(key)))
    session.flush()
    return key


def create_application(session: Session, name: str, *, scope: Scope) -> ApplicationWithKey:
    require_operator(scope, "create applications")
    name = _check_name(name)
    existing = session.scalar(select(Application.id).where(Application.name == name))
    if existing is not None:
        raise InputError(f"an application named {name!r} exists already (id {existing})")
    app = Application(name=name)
    session.add(app)
    session.flush()
    key = _new_key(session, app)
    return ApplicationWithKey(_views(session, [app])[0], key)


def list_applications(
    session: Session, *, scope: Scope, cursor: str | None = None, limit: int = DEFAULT_LIMIT
) -> Page[public.Application]:
    check_limit(limit)
    query = select(Application).where(Application.id > decode_cursor(cursor))
    query = scoped(query, Application.id, scope).order_by(Application.id).limit(limit + 1)
    return page_of(_views(session, list(session.scalars(query))), limit)


def get_application(session: Session, application_id: int, *, scope: Scope) -> public.Application:
    return _views(session, [_get(session, application_id, scope)])[0]


def rotate_api_key(session: Session, application_id: int, *, scope: Scope) -> ApplicationWithKey:
    app = _get(session, application_id, scope)
    key = _new_key(session, app)
    return ApplicationWithKey(_views(session, [app])[0], key)


def delete_application(session: Session, application_id: int, *, scope: Scope) -> None:
    """Delete an application with its keys; refused while it has endpoints, and for `default`."""
    app = _get(session, application_id, scope)
    require_operator(scope, "delete applications")
    if app.name == DEFAULT_APPLICATION:
        raise InputError(
            f"application {app.id} is the built-in {DEFAULT_APPLICATION!r} one; it cannot be deleted"
        )
    count = _views(session, [app])[0].endpoints
    if count:
        raise InputError(
            f"application {app.id} still has {count} endpoint(s); delete them first "
            f"(`ethhook endpoint list --app {app.id}`, then `ethhook endpoint delete ID`)"
        )
    session.delete(app)
    session.flush()


def set_operator_key(session: Session) -> str:
    """Create or replace the one operator key; returns it (the only time it is shown)."""
    session.execute(delete(ApiKey).where(ApiKey.role == ApiKeyRole.OPERATOR))
    key = generate_key()
    session.add(ApiKey(application_id=None, role=ApiKeyRole.OPERATOR, key_hash=hash_key(key)))
    session.flush()
    return key


def authenticate(session: Session, key: str) -> Principal | None:
    """Whose key this is, or None for a key that is malformed, unknown or replaced."""
    if not looks_like_key(key):
        return None
    digest = hash_key(key)
    row = session.execute(
        select(ApiKey.application_id, ApiKey.key_hash).where(ApiKey.key_hash == digest)
    ).first()
    # The index found the row by equality; compare again in constant time all the same.
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return Principal(row.application_id)


def default_application_id(session: Session) -> int:
    app_id = session.scalar(select(Application.id).where(Application.name == DEFAULT_APPLICATION))
    if app_id is None:
        raise NotFoundError(
            f"the built-in application {DEFAULT_APPLICATION!r} is missing; run `ethhook db upgrade`"
        )
    return app_id


def target_application(session: Session, application_id: int | None, *, scope: Scope) -> int:
    """The application a new endpoint joins: the one named (visible to the scope), else the
    scope's own, else (for the operator) `default`."""
    if application_id is not None:
        return _get(session, application_id, scope).id
    if scope is not None:
        return scope
    return default_application_id(session)
