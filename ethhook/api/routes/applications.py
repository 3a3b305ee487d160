"""/v1/applications: tenants and their API keys. The operator key sees and manages every one;
an application's key sees only its own (and may rotate it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from ethhook.api import schemas
from ethhook.api.routes.common import READ, WRITE, Caller, Id, Paging
from ethhook.service import apps as service

router = APIRouter(prefix="/v1/applications", tags=["applications"])


@router.post("", status_code=201, response_model=schemas.ApplicationWithKey, responses=WRITE)
def create_application(
    caller: Caller, body: schemas.ApplicationCreate
) -> schemas.ApplicationWithKey:
    """Create an application (operator key only); its `api_key` is shown this once."""
    return caller.run(service.create_application, body.name).as_public()


@router.get("", response_model=schemas.Page[schemas.Application], responses=READ)
def list_applications(caller: Caller, page: Paging) -> dict[str, Any]:
    return caller.page(service.list_applications, page)


@router.get("/{application_id}", response_model=schemas.Application, responses=READ)
def show_application(application_id: Id, caller: Caller) -> schemas.Application:
    return caller.run(service.get_application, application_id)


@router.delete("/{application_id}", status_code=204, response_class=Response, responses=WRITE)
def delete_application(application_id: Id, caller: Caller) -> Response:
    """Delete an application and its key (operator key only; refused while it has endpoints)."""
    caller.run(service.delete_application, application_id)
    return Response(status_code=204)


@router.post(
    "/{application_id}/rotate-key", response_model=schemas.ApplicationWithKey, responses=WRITE
)
def rotate_key(application_id: Id, caller: Caller) -> schemas.ApplicationWithKey:
    """A new API key; the old one stops working now."""
    return caller.run(service.rotate_api_key, application_id).as_public()
