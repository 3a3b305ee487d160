"""/v1/applications: tenants and their API keys. The operator key sees and manages every one;
an application's key sees only its own (and may rotate it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from ethhook.api import schemas
from ethhook.api.routes.common import (
    DEFAULT_PAGE,
    READ,
    WRITE,
    Caller,
    Cursor,
    Id,
    Limit,
    in_session,
)
from ethhook.service import apps as service

router = APIRouter(prefix="/v1/applications", tags=["applications"])


@router.post("", status_code=201, response_model=schemas.ApplicationWithKey, responses=WRITE)
def create_application(
    principal: Caller,
    body: schemas.ApplicationCreate,
) -> schemas.ApplicationWithKey:
    """Create an application (operator key only); its `api_key` is shown this once."""
    created = in_session(service.create_application, body.name, scope=principal.scope)
    return created.as_public()


@router.get("", response_model=schemas.Page[schemas.Application], responses=READ)
def list_applications(
    principal: Caller,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> dict[str, Any]:
    page = in_session(service.list_applications, scope=principal.scope, cursor=cursor, limit=limit)
    return {"data": page.items, "next_cursor": page.next_cursor}


@router.get("/{application_id}", response_model=schemas.Application, responses=READ)
def show_application(
    application_id: Id,
    principal: Caller,
) -> schemas.Application:
    return in_session(service.get_application, application_id, scope=principal.scope)


@router.delete("/{application_id}", status_code=204, response_class=Response, responses=WRITE)
def delete_application(
    application_id: Id,
    principal: Caller,
) -> Response:
    """Delete an application and its key (operator key only; refused while it has endpoints)."""
    in_session(service.delete_application, application_id, scope=principal.scope)
    return Response(status_code=204)


@router.post(
    "/{application_id}/rotate-key", response_model=schemas.ApplicationWithKey, responses=WRITE
)
def rotate_key(
    application_id: Id,
    principal: Caller,
) -> schemas.ApplicationWithKey:
    """A new API key; the old one stops working now."""
    rotated = in_session(service.rotate_api_key, application_id, scope=principal.scope)
    return rotated.as_public()
