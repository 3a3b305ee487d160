"""An application's operational endpoint (`ethhook app ops-endpoint`, `PUT|DELETE
/v1/ops-endpoint`) and the operational webhooks sent to it (the console's application page).

The application is the scope's own, or the one named when visible to the scope (the operator
sees every one): another application's is reported missing, never forbidden."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ethhook.db.models import OpsEndpoint, OpsMessage, utcnow
from ethhook.deliver.signing import generate_secret
from ethhook.exceptions import NotFoundError
from ethhook.service import public
from ethhook.service.apps import target_application
from ethhook.service.pages import check_limit
from ethhook.service.scope import Scope
from ethhook.service.validation import parse_url


def _view(row: OpsEndpoint) -> public.OpsEndpoint:
    return public.OpsEndpoint(
        application_id=row.application_id,
        url=row.url,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def set_ops_endpoint(
    session: Session, application_id: int | None, url: str, *, scope: Scope
) -> public.OpsEndpointWithSecret:
    """Register (or move to a new URL) the application's one ops endpoint; returns it with its
    secret, made on first registration and kept when only the URL changes."""
    checked = parse_url(url)
    app_id = target_application(session, application_id, scope=scope)
    row = session.get(OpsEndpoint, app_id)
    now = utcnow()
    if row is None:
        row = OpsEndpoint(
            application_id=app_id, url=checked, secret=generate_secret(), created_at=now
        )
        session.add(row)
    row.url = checked
    row.updated_at = now
    session.flush()
    return public.OpsEndpointWithSecret(**_view(row).model_dump(), secret=row.secret)


def get_ops_endpoint(
    session: Session, application_id: int | None, *, scope: Scope
) -> public.OpsEndpoint:
    app_id = target_application(session, application_id, scope=scope)
    row = session.get(OpsEndpoint, app_id)
    if row is None:
        raise NotFoundError(f"application {app_id} has no ops endpoint")
    return _view(row)


def clear_ops_endpoint(session: Session, application_id: int | None, *, scope: Scope) -> int:
    """Remove the application's ops endpoint (its unsent messages end `cancelled` when their
    turn comes); returns the application id."""
    app_id = target_application(session, application_id, scope=scope)
    row = session.get(OpsEndpoint, app_id)
    if row is None:
        raise NotFoundError(f"application {app_id} has no ops endpoint")
    session.delete(row)
    return app_id


def list_ops_messages(
    session: Session, application_id: int | None, limit: int = 50, *, scope: Scope
) -> list[public.OpsMessage]:
    """The application's latest operational webhooks, newest first."""
    check_limit(limit)
    app_id = target_application(session, application_id, scope=scope)
    rows = session.scalars(
        select(OpsMessage)
        .where(OpsMessage.application_id == app_id)
        .order_by(OpsMessage.id.desc())
        .limit(limit)
    )
    return [
        public.OpsMessage(
            id=m.id,
            application_id=m.application_id,
            type=m.type,
            webhook_id=m.webhook_id,
            data=m.data,
            status=m.status,
            attempt_count=m.attempts,
            next_attempt_at=m.next_attempt_at,
            last_status_code=m.last_status_code,
            last_error=m.last_error,
            created_at=m.created_at,
        )
        for m in rows
    ]
