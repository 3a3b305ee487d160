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


# `kind` and `transaction_hash` in a query: checked by DeliveryFilter.
Kind = Annotated[str | None, Query(max_length=20, description=f"one of {', '.join(service.KINDS)}")]
TxHash = Annotated[
    str | None, Query(max_length=100, description="deliveries of this transaction's events")
]


def delivery_filter(
    status: str | None,
    endpoint_id: int | None,
    since: str | None,
    until: str | None = None,
    kind: str | None = None,
    transaction_hash: str | None = None,
) -> Any:
    return service.DeliveryFilter(
        status=status,
        endpoint_id=endpoint_id,
        since=parse_since(since, "since") if since is not None else None,
        until=parse_since(until, "until") if until is not None else None,
        kind=kind,
        tx_hash=transaction_hash,
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
    until: Since = None,
    kind: Kind = None,
    transaction_hash: TxHash = None,
) -> dict[str, Any]:
    """Deliveries in id order (oldest first), filtered (`until`: created before; `kind`: the
    webhook's type; `transaction_hash`: of that transaction's events); `next_cursor` continues
    the list."""
    where = delivery_filter(status, endpoint_id, since, until, kind, transaction_hash)
    return caller.page(service.list_deliveries, page, where)


@router.post("/retry", status_code=202, response_model=schemas.RetryAccepted, responses=WRITE)
def retry_matching(caller: Caller, body: schemas.BulkRetryRequest) -> dict[str, Any]:
    """Send again now every delivery with this status (of this endpoint, this kind, this
    transaction, created in this time range)."""
    where = delivery_filter(
        body.status, body.endpoint_id, body.since, body.until, body.kind, body.transaction_hash
    )
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
