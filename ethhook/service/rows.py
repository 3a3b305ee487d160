"""A row by its id within a scope, for the service's modules and for workers alike: no views,
so a worker that looks an endpoint up loads no pydantic model."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ethhook.db.models import Endpoint
from ethhook.exceptions import NotFoundError
from ethhook.service.scope import Scope, scoped


def get_endpoint(session: Session, endpoint_id: int, *, scope: Scope) -> Endpoint:
    """The endpoint row; a missing one, or another application's, is NotFoundError."""
    query = select(Endpoint).where(Endpoint.id == endpoint_id)
    endpoint = session.scalar(scoped(query, Endpoint.application_id, scope))
    if endpoint is None:
        raise NotFoundError(f"no endpoint with id {endpoint_id} (see `ethhook endpoint list`)")
    return endpoint
