"""/v1/endpoints: register, list, show, change, pause, re-key, test and delete endpoints."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio
from fastapi import APIRouter, Request, Response

from ethhook.api import schemas
from ethhook.api.routes.common import READ, WRITE, Caller, Id, OptionalId, Paging
from ethhook.db.models import utcnow
from ethhook.replay.backfill import add_endpoint
from ethhook.service import coverage
from ethhook.service import endpoints as service
from ethhook.service.changes import UPDATABLE, build_changes
from ethhook.service.testsend import reserve_test_send, send_test_webhook
from ethhook.service.validation import build_spec
from ethhook.workqueue import enqueue_replays

router = APIRouter(prefix="/v1/endpoints", tags=["endpoints"])


def schedule_text(schedule: list[float] | None) -> str | None:
    """A JSON list of seconds in the text form the service parses (`0,5,300`)."""
    return None if schedule is None else ",".join(repr(float(s)) for s in schedule)


@router.post("", status_code=201, response_model=schemas.EndpointWithSecret, responses=WRITE)
def create_endpoint(caller: Caller, body: schemas.EndpointCreate) -> schemas.EndpointWithSecret:
    """Register an endpoint; the answer carries its signing `secret` (ed25519: `public_key`).
    With `from_block`, its history from that block to the listener's head is delivered first by
    a replay job (`backfill_replay_id`, origin backfill), then it is live."""
    spec = build_spec(
        url=body.url,
        chains=[str(c) for c in body.chains],
        contracts=body.contracts,
        events=body.events,
        where=body.where,
        confirmations=body.confirmations,
        finality=body.finality,
        lifecycle=body.lifecycle,
        rate_limit_per_s=body.rate_limit,
        retry_schedule=schedule_text(body.retry_schedule),
        name=body.name,
        settings=caller.settings,
        signing=body.signing,
        from_block=body.from_block,
        live_only=body.live_only,
        ordered=body.ordered,
    )
    made = caller.run(
        add_endpoint, caller.settings, spec, utcnow(), application_id=body.application_id
    )
    if made.dispatch is not None:
        enqueue_replays([made.dispatch])
    return made.as_public()


@router.get("", response_model=schemas.Page[schemas.Endpoint], responses=READ)
def list_endpoints(
    caller: Caller, page: Paging, application_id: OptionalId = None
) -> dict[str, Any]:
    return caller.page(service.list_endpoints, page, application_id=application_id)


@router.get("/{endpoint_id}", response_model=schemas.EndpointDetails, responses=READ)
def show_endpoint(endpoint_id: Id, caller: Caller) -> schemas.EndpointDetails:
    """The endpoint, its deliveries by status and its circuit breaker (never its secret)."""
    details = caller.run(service.show_endpoint, endpoint_id)
    return details.as_public(service.breaker_state(endpoint_id, caller.settings))


@router.patch("/{endpoint_id}", response_model=schemas.Endpoint, responses=WRITE)
def update_endpoint(
    endpoint_id: Id, caller: Caller, body: schemas.EndpointUpdate
) -> schemas.Endpoint:
    """Change the fields given, in place: same id, secret and deliveries."""
    given = body.model_fields_set
    fields: dict[str, Any] = {f: getattr(body, f) for f in given if f in UPDATABLE}
    if "chains" in fields:
        fields["chains"] = [str(c) for c in fields["chains"]]
    if "retry_schedule" in fields:
        fields["retry_schedule"] = schedule_text(fields["retry_schedule"])
    changes = build_changes(caller.settings, **fields)
    return caller.run(service.update_endpoint, endpoint_id, changes)


@router.delete("/{endpoint_id}", status_code=204, response_class=Response, responses=READ)
def delete_endpoint(endpoint_id: Id, caller: Caller) -> Response:
    """Delete the endpoint with its deliveries and attempts."""
    caller.run(service.delete_endpoint, endpoint_id)
    return Response(status_code=204)


@router.post("/{endpoint_id}/enable", response_model=schemas.Endpoint, responses=WRITE)
def enable_endpoint(endpoint_id: Id, caller: Caller) -> schemas.Endpoint:
    """Resume delivering; the deliveries that waited go out."""
    return caller.run(service.set_active, endpoint_id, True, None)


@router.post("/{endpoint_id}/disable", response_model=schemas.Endpoint, responses=WRITE)
def disable_endpoint(
    endpoint_id: Id, caller: Caller, body: schemas.DisableRequest | None = None
) -> schemas.Endpoint:
    """Stop delivering; its deliveries, and those of the events that match it meanwhile, wait
    (within retention) until the endpoint is enabled again, unless `discard` drops them."""
    reason = (body.reason if body else None) or "disabled through the API"
    discard = bool(body and body.discard)
    return caller.run(service.set_active, endpoint_id, False, reason, discard=discard)


@router.post(
    "/{endpoint_id}/rotate-secret", response_model=schemas.EndpointWithSecret, responses=WRITE
)
def rotate_secret(
    endpoint_id: Id, caller: Caller, body: schemas.RotateSecretRequest | None = None
) -> schemas.EndpointWithSecret:
    """A new secret; the old one keeps signing beside it for `grace_s` seconds."""
    grace = body.grace_s if body and body.grace_s is not None else None
    if grace is None:
        grace = caller.settings.secret_rotation_grace_s
    return caller.run(service.rotate_secret, endpoint_id, grace).as_public()


@router.get("/{endpoint_id}/coverage", response_model=schemas.Coverage, responses=READ)
def endpoint_coverage(endpoint_id: Id, caller: Caller) -> schemas.Coverage:
    """Per chain, the blocks scanned for the endpoint since it was made (or its `from_block`)
    and where the part with its confirmations ends: nothing was missed up to `confirmed_to`."""
    return caller.run(coverage.endpoint_coverage, endpoint_id, caller.settings)


@router.get("/{endpoint_id}/secret", response_model=schemas.Secrets, responses=READ)
def endpoint_secret(endpoint_id: Id, caller: Caller) -> schemas.Secrets:
    """The secret that signs the endpoint's webhooks (and the previous one while it signs)."""
    return caller.run(service.endpoint_secrets, endpoint_id)


@router.post("/{endpoint_id}/test", response_model=schemas.EndpointTestResult, responses=WRITE)
async def test_endpoint(endpoint_id: Id, caller: Caller, request: Request) -> dict[str, Any]:
    """Send a signed `endpoint.test` webhook now and report what the endpoint answered (429
    while too many tests are under way)."""
    settings = caller.settings
    send = partial(caller.run, send_test_webhook, endpoint_id, settings=settings, reserved=True)
    # The slot is taken here, on the event loop: a refusal costs no thread. The test then waits
    # for its receiver on a pool of its own, never on the one every other sync route shares.
    with reserve_test_send(caller.scope, settings):
        result = await anyio.to_thread.run_sync(send, limiter=request.app.state.test_send_threads)
    return {
        "webhook_id": result.webhook_id,
        "ok": result.ok,
        "status_code": result.status_code,
        "duration_ms": result.duration_ms,
        "error": result.error,
    }
