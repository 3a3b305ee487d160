"""/v1/deliveries: list and show deliveries with their attempts, and send them again."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ethhook.api import schemas
from ethhook.api.routes.common import READ, WRITE, Caller, Id, OptionalId, Paging, Since
from ethhook.db.models import DeliveryStatus
from ethhook.service import deliveries as service
from ethhook.service.times import parse_since
from ethhook.workqueue import enqueue_groups

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])

# `status` in a query: one of the statuses, checked by DeliveryFilter.
Status = Annotated[
    str | None, Query(max_length=20, description=f"one of {', '.join(DeliveryStatus.ALL)}")
]


def delivery_filter(status: str | None, endpoint_id: int | None, since: str | None) -> Any:
    return service.DeliveryFilter(
        status=status,
        endpoint_id=endpoint_id,
        since=parse_since(since, "since") if since is not None else None,
    )


def retried(plan: service.RetryPlan) -> dict[str, Any]:
    """Publish the plan's deliver tasks (after the commit, as `ethhook delivery retry` does)."""
    enqueue_groups(plan.groups)
    return {"count": plan.count}


@router.get("", response_model=schemas.Page[schemas.Delivery], responses=READ)
def list_deliveries(
    caller: Caller,
    page: Paging,
    endpoint_id: OptionalId = None,
    status: Status = None,
    since: Since = None,
) -> dict[str, Any]:
    """Deliveries in id order (oldest first), filtered; `next_cursor` continues the list."""
    return caller.page(service.list_deliveries, page, delivery_filter(status, endpoint_id, since))


@router.post("/retry", status_code=202, response_model=schemas.RetryAccepted, responses=WRITE)
def retry_matching(caller: Caller, body: schemas.BulkRetryRequest) -> dict[str, Any]:
    """Send again now every delivery with this status (of this endpoint, since this time)."""
    where = delivery_filter(body.status, body.endpoint_id, body.since)
    return retried(caller.run(service.retry_matching, where))


@router.get("/{delivery_id}", response_model=schemas.DeliveryDetails, responses=READ)
def show_delivery(delivery_id: Id, caller: Caller) -> schemas.DeliveryDetails:
    """The delivery with every attempt: status, duration, error and response body."""
    return caller.run(service.show_delivery, delivery_id).as_public()


@router.post(
    "/{delivery_id}/retry", status_code=202, response_model=schemas.RetryAccepted, responses=WRITE
)
def retry_delivery(delivery_id: Id, caller: Caller) -> dict[str, Any]:
    """Send the delivery again now, with the same webhook-id."""
    return retried(caller.run(service.retry_deliveries, [delivery_id]))
