"""The JSON the API takes and returns (request and response models, and so the OpenAPI schema).

Models only describe shapes: every value is validated by the service layer, once, for the CLI and
the API alike. What the API answers about a resource is its public model (`service.public`, which
`ethhook … --json` prints too); field names are the README's (`rate_limit`, `retry_schedule`,
`chains`, …) both ways, so what a GET returns can be sent back in a PATCH.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from ethhook.config import BIGINT_MAX
from ethhook.service.public import (
    Application,
    ApplicationWithKey,
    Attempt,
    Coverage,
    Delivery,
    DeliveryDetails,
    Endpoint,
    EndpointDetails,
    EndpointWithSecret,
    Explanation,
    OpsEndpoint,
    OpsEndpointWithSecret,
    OpsMessage,
    Replay,
    Secrets,
)

__all__ = [
    "Application",
    "ApplicationWithKey",
    "Attempt",
    "Coverage",
    "Delivery",
    "DeliveryDetails",
    "Endpoint",
    "EndpointDetails",
    "EndpointWithSecret",
    "Explanation",
    "OpsEndpoint",
    "OpsEndpointWithSecret",
    "OpsMessage",
    "Replay",
    "Secrets",
]

T = TypeVar("T")

ChainRef = int | str  # a chain id or a name
# An id or a block number: what fits a BIGINT column.
RowId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
Block = Annotated[int, Field(ge=0, le=BIGINT_MAX)]


class Request(BaseModel):
    """A request body: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


# --- endpoints -------------------------------------------------------------------------------------


FINALITY_HELP = (
    "`latest` (event.confirmed after `confirmations` blocks; 0: event.instant), `safe` or "
    "`finalized` (event.confirmed once the chain's node reports that block tag at the event's "
    "block; `confirmations` must then be 0)"
)
LIFECYCLE_HELP = (
    "each event as event.instant at once, then event.confirmed at its finality, or "
    "event.removed if a reorg takes it back first (one event_id, three webhook-ids)"
)
ORDERED_HELP = (
    "null: webhooks sent in parallel; `pause` or `skip-dead`: strictly in sequence order, one at "
    "a time, a failing one holding those after it; when one is dead-lettered `pause` stops the "
    "endpoint until it is retried, `skip-dead` goes past it (its `skipped_at` records it)"
)


class EndpointCreate(Request):
    url: str = Field(description="http(s) URL that receives the webhooks")
    chains: list[ChainRef] = Field(default=[], description="chain ids or names; empty: every chain")
    contracts: list[str] = Field(default=[], description="contract addresses; empty: every one")
    events: list[str] = Field(
        default=[], description="Solidity event signatures or topic0s; empty: every event"
    )
    where: list[str] = Field(
        default=[],
        description="conditions on the decoded arguments of the one event, all must hold: "
        "`ARG OP VALUE` (== != < <= > >=) or `ARG in (V1, V2)`, e.g. `value >= 1000000`",
    )
    confirmations: int = 0
    finality: str = Field(default="latest", description=FINALITY_HELP)
    lifecycle: bool = Field(default=False, description=LIFECYCLE_HELP)
    rate_limit: float | None = Field(default=None, description="requests per second at most")
    retry_schedule: list[float] | None = Field(
        default=None, description="seconds before each attempt, e.g. [0, 5, 300]"
    )
    name: str | None = None
    signing: str = Field(
        default="hmac",
        description="`hmac` (`v1,` with the `secret`) or `ed25519` (Standard Webhooks `v1a,`: "
        "receivers verify with the answer's `public_key`, the private key is never shown)",
    )
    application_id: RowId | None = Field(
        default=None, description="the operator's choice of application; default: the key's own"
    )
    from_block: Block | None = Field(
        default=None,
        description="deliver its history first, from this block of its one chain to the "
        "listener's head, oldest first (origin backfill, sequence from 1), then live events",
    )
    live_only: bool = Field(default=False, description="replays and backfills send it nothing")
    ordered: str | None = Field(default=None, description=ORDERED_HELP)


class EndpointUpdate(Request):
    """Only the fields given change; `null` clears `name`, `rate_limit` and `retry_schedule`,
    and turns `ordered` off (the others may not be null: leave them out to keep them)."""

    url: str | SkipJsonSchema[None] = None
    chains: list[ChainRef] | SkipJsonSchema[None] = None
    contracts: list[str] | SkipJsonSchema[None] = None
    events: list[str] | SkipJsonSchema[None] = None
    where: list[str] | SkipJsonSchema[None] = None
    confirmations: int | SkipJsonSchema[None] = None
    finality: str | SkipJsonSchema[None] = Field(default=None, description=FINALITY_HELP)
    lifecycle: bool | SkipJsonSchema[None] = Field(default=None, description=LIFECYCLE_HELP)
    rate_limit: float | None = None
    retry_schedule: list[float] | None = None
    name: str | None = None
    ordered: str | None = Field(default=None, description=ORDERED_HELP)

    @field_validator(
        "url", "chains", "contracts", "events", "where", "confirmations", "finality", "lifecycle"
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only on values sent (defaults are not validated): an explicit null is refused.
        if value is None:
            raise ValueError("may not be null; leave the field out to keep its value")
        return value


class DisableRequest(Request):
    reason: str | None = Field(default=None, description="why; shown with the endpoint")
    discard: bool = Field(
        default=False,
        description="drop its unsent deliveries (recorded as discarded) and keep none of the "
        "events that match it until it is enabled; by default they wait as its backlog",
    )


class RotateSecretRequest(Request):
    grace_s: float | None = Field(
        default=None, description="seconds the old secret keeps signing (default: the setting)"
    )


class EndpointTestResult(BaseModel):
    """What the endpoint answered to a signed `endpoint.test` webhook."""

    webhook_id: str
    ok: bool
    status_code: int | None
    duration_ms: float
    error: str | None


# --- deliveries ------------------------------------------------------------------------------------


class BulkRetryRequest(Request):
    status: str = Field(description="e.g. failed")
    endpoint_id: RowId | None = None
    since: str | None = Field(default=None, description="ISO 8601, e.g. 2026-11-27T08:00:00Z")
    until: str | None = Field(default=None, description="created before; ISO 8601")
    kind: str | None = Field(default=None, description="the webhook's type, e.g. event.confirmed")
    transaction_hash: str | None = Field(
        default=None, description="only the deliveries of this transaction's events"
    )


class RetryAccepted(BaseModel):
    count: int = Field(description="deliveries made due now")


# --- replays ---------------------------------------------------------------------------------------


class ReplayCreate(Request):
    chain: ChainRef
    from_block: Block
    to_block: Block
    endpoint_id: RowId | None = Field(
        default=None, description="required for an application key; the operator may omit it"
    )


# --- statistics ------------------------------------------------------------------------------------


class EndpointStats(BaseModel):
    endpoint_id: int
    attempts: int
    succeeded: int
    failed: int
    client_errors: int
    server_errors: int
    no_response: int
    dead_lettered: int
    success_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_mean_ms: float | None
    latency_buckets: list[int]
    deliveries: dict[str, int]


class Stats(BaseModel):
    since: datetime
    until: datetime
    endpoints: list[EndpointStats]


# --- applications ----------------------------------------------------------------------------------


class ApplicationCreate(Request):
    name: str


class OpsEndpointSet(Request):
    url: str = Field(description="where the operational webhooks go")
    application_id: RowId | None = Field(
        default=None,
        description="the operator key names the application (default: `default`); an "
        "application's key may name only its own",
    )


class Health(BaseModel):
    status: str
    database: str
    redis: str
