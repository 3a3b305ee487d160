"""What users see of each resource, declared once: the HTTP API answers with these models,
`ethhook … --json` prints the same fields (`to_public`), and the console's pages read them.

One name per field, the API's: `rate_limit`, `retry_schedule`, `attempt_count`, ….
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Public(BaseModel):
    """A resource as users see it: never a secret unless its name says so."""

    model_config = ConfigDict(frozen=True)


def to_public(model: Public) -> dict[str, Any]:
    """The fields of `model` by their public names (datetimes left for the caller to format)."""
    return model.model_dump()


# --- endpoints -------------------------------------------------------------------------------------


# Never its secrets: those are shown when made (EndpointWithSecret) or asked for (Secrets).
class Endpoint(Public):
    id: int
    application_id: int
    name: str | None
    url: str
    active: bool
    disabled_reason: str | None
    chains: list[int]
    contracts: list[str]
    events: list[str]
    topics: list[str]
    where: list[str]
    confirmations: int
    finality: str = Field(
        description="`latest` (event.confirmed after `confirmations` blocks), `safe` or "
        "`finalized` (once the chain's node reports that block tag at the event's block)"
    )
    lifecycle: bool = Field(
        description="each event comes as event.instant, then event.confirmed at its finality, "
        "or event.removed if a reorg takes it back first"
    )
    rate_limit: float | None
    retry_schedule: list[float] | None
    created_at: datetime
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None
    signing: str = Field(
        description="`hmac` (`v1,` signatures with the shared `secret`) or `ed25519` (`v1a,` "
        "signatures that `public_key` verifies)"
    )
    public_key: str | None = Field(
        description="`whpk_…`: verifies an ed25519 endpoint's webhooks; null for hmac"
    )
    ordered: str | None = Field(
        default=None,
        description="null: webhooks sent in parallel; `pause` or `skip-dead`: strictly in "
        "sequence order, one at a time, a failing one holding those after it; when one is "
        "dead-lettered, `pause` stops the endpoint until it is retried, `skip-dead` goes on "
        "(the delivery's `skipped_at` records it)",
    )
    from_block: int | None = Field(
        description="its history from this block was backfilled (origin backfill)"
    )
    backfilling: bool = Field(
        description="its --from-block history is being delivered; live events follow it"
    )
    live_only: bool = Field(description="replays and backfills send it nothing")
    backlog: str | None = Field(
        description="while disabled: `kept` (what matches it waits for enable) or `discarded` "
        "(disabled with --discard); null while active"
    )


# What holds an `--ordered=pause` endpoint: its head delivery is dead-lettered.
class OrderedPause(Public):
    delivery_id: int
    sequence: int | None
    reason: str


class EndpointDetails(Endpoint):
    deliveries: dict[str, int] = Field(description="deliveries by status")
    circuit_breaker: str
    paused: OrderedPause | None = Field(
        default=None,
        description="an --ordered=pause endpoint whose head is dead-lettered sends nothing "
        "until it is retried or the endpoint set to skip-dead; null otherwise",
    )


class EndpointWithSecret(Endpoint):
    secret: str | None = Field(
        description="signs an hmac endpoint's webhooks; shown here and at /secret (null for "
        "ed25519: its private key is never shown, receivers verify with `public_key`)"
    )
    backfill_replay_id: int | None = Field(
        default=None, description="the replay job delivering its --from-block history"
    )


# The secret that signs the endpoint's webhooks now, and the previous one while it signs too
# (for ed25519: the public keys that verify them; the secrets are null).
class Secrets(Public):
    id: int
    signing: str
    secret: str | None
    previous_secret: str | None
    public_key: str | None
    previous_public_key: str | None
    previous_secret_expires_at: datetime | None


# What has been scanned for an endpoint on one chain: blocks `from_block` to `scanned_to` were
# read and matched for it; deliveries are made (confirmations reached) up to `confirmed_to`.
class ChainCoverage(Public):
    chain_id: int
    chain: str
    from_block: int | None = Field(
        description="the first block scanned for it: its --from-block, or the block after the "
        "listener's cursor when it was made; null when the listener had not read the chain then"
    )
    scanned_to: int | None = Field(
        description="the last block scanned for it (the listener's cursor; during a backfill, "
        "the backfill's last block done); null before any"
    )
    confirmed_to: int | None = Field(
        description="the last block whose events have their confirmations: every matching event "
        "up to here has a delivery"
    )
    backfilling: bool


class Coverage(Public):
    endpoint_id: int
    active: bool = Field(description="a disabled endpoint is not matched while it is disabled")
    confirmations: int
    chains: list[ChainCoverage]


# --- deliveries ------------------------------------------------------------------------------------


class Delivery(Public):
    id: int
    webhook_id: str
    endpoint_id: int
    event_id: str
    kind: str
    status: str
    sequence: int | None = Field(
        description="the endpoint's counter, as the webhook body carries it (1, 2, 3, …); null "
        "while a confirmed delivery waits for its confirmations, or an ordered endpoint's waits "
        "for the chain's earlier events to be matched"
    )
    origin: str = Field(description="why it is sent: live, replay or backfill")
    skipped_at: datetime | None = Field(
        default=None,
        description="when its --ordered=skip-dead endpoint went on past it, dead-lettered",
    )
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


# One request sent for a delivery (`attempt` numbers them from 1).
class Attempt(Public):
    attempt: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    response_body: str | None


class DeliveryDetails(Delivery):
    attempts: list[Attempt]


# --- applications ----------------------------------------------------------------------------------


class Application(Public):
    id: int
    name: str
    created_at: datetime
    endpoints: int


class ApplicationWithKey(Application):
    api_key: str = Field(description="`Authorization: Bearer <api_key>`; shown only this once")


# --- operational webhooks --------------------------------------------------------------------------


class OpsEndpoint(Public):
    application_id: int
    url: str
    created_at: datetime
    updated_at: datetime


class OpsEndpointWithSecret(OpsEndpoint):
    secret: str = Field(
        description="`whsec_…`: verifies the operational webhooks (Standard Webhooks `v1,`)"
    )


class OpsMessage(Public):
    id: int
    application_id: int
    type: str = Field(
        description="endpoint.disabled, endpoint.failing, endpoint.recovered, replay.finished "
        "or chain.lagging"
    )
    webhook_id: str
    data: dict[str, Any]
    status: str = Field(description="pending, succeeded, failed or cancelled")
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime


# --- replays ---------------------------------------------------------------------------------------


# A replay job as its row holds it: the replay service's own view (replay.jobs.Replay) adds its
# progress to these.
class ReplayBase(Public):
    id: int
    chain_id: int
    from_block: int
    to_block: int
    endpoint_id: int | None
    origin: str = Field(description="replay, or backfill for an endpoint's --from-block history")
    state: str
    chunks_done: int
    blocks_done: int
    events: int
    deliveries: int
    error: str | None
    created_at: datetime
    updated_at: datetime


# A replay job as users see it: with its chain's name, and `blocks_done` of `blocks_total`.
class Replay(ReplayBase):
    chain: str
    blocks_total: int


# --- explain ---------------------------------------------------------------------------------------


class ExplainAttempt(Public):
    attempt_number: int
    status_code: int | None
    error: str | None
    started_at: datetime
    duration_ms: float


class ExplainDelivery(Public):
    id: int
    webhook_id: str
    kind: str
    status: str
    sequence: int | None = Field(description="the endpoint's counter for this webhook")
    attempts: list[ExplainAttempt]


class ExplainEndpoint(Public):
    endpoint_id: int
    matched: bool = Field(description="the event matched the endpoint: it has a delivery")
    reason: str | None = Field(
        description="the first check that failed, or what holds a matched event back, in words "
        "that start with its name (`chain:`, `contract:`, `event:`, `where:`, `disabled:`, "
        "`created after the block:`, `confirmations:`, `ordered:`, `retrying:`, `failed:` …); "
        "null when nothing does"
    )
    deliveries: list[ExplainDelivery]


class ExplainLog(Public):
    log_index: int
    address: str
    topic0: str | None
    event_id: str
    stored: bool = Field(description="EthHook stored the log (the listener or a replay read it)")
    endpoints: list[ExplainEndpoint]


class Explanation(Public):
    chain_id: int
    transaction_hash: str
    block_number: int
    block_hash: str
    logs: list[ExplainLog]
    source: str = Field(
        description="`database`: the logs EthHook stored; `node`: none was stored, they come "
        "from the transaction's receipt on the chain's node"
    )
