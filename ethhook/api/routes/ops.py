"""/v1/ops-endpoint: the calling application's operational endpoint, and the operational
webhooks sent to it. An application's key reaches its own only; the operator key names one
with `application_id` (default: the `default` application)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ethhook.api import schemas
from ethhook.api.routes.common import READ, WRITE, Caller, Limit, OptionalId
from ethhook.service import ops as service

router = APIRouter(prefix="/v1/ops-endpoint", tags=["operational webhooks"])

AppQuery = Annotated[OptionalId, Query(description="the operator key's choice of application")]


@router.put("", response_model=schemas.OpsEndpointWithSecret, responses=WRITE)
def set_ops_endpoint(caller: Caller, body: schemas.OpsEndpointSet) -> schemas.OpsEndpointWithSecret:
    """Register the application's operational endpoint, or move it to a new URL (its secret,
    shown here, is kept). It receives signed `endpoint.disabled`, `endpoint.failing`,
    `endpoint.recovered`, `replay.finished` and `chain.lagging` webhooks."""
    return caller.run(service.set_ops_endpoint, body.application_id, body.url)


@router.get("", response_model=schemas.OpsEndpoint, responses=READ)
def show_ops_endpoint(caller: Caller, application_id: AppQuery = None) -> schemas.OpsEndpoint:
    return caller.run(service.get_ops_endpoint, application_id)


@router.delete("", status_code=204, response_class=Response, responses=WRITE)
def clear_ops_endpoint(caller: Caller, application_id: AppQuery = None) -> Response:
    """Remove the operational endpoint: nothing more is sent to it."""
    caller.run(service.clear_ops_endpoint, application_id)
    return Response(status_code=204)


@router.get("/messages", response_model=list[schemas.OpsMessage], responses=READ)
def list_ops_messages(
    caller: Caller, application_id: AppQuery = None, limit: Limit = 50
) -> list[schemas.OpsMessage]:
    """The application's latest operational webhooks, newest first."""
    return caller.run(service.list_ops_messages, application_id, limit)
