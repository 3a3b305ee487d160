"""Endpoints: register, list, show, change, pause, re-key and delete them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from ethhook.config import Settings
from ethhook.db.models import (
    Delivery,
    DeliveryAttempt,
    Endpoint,
    utcnow,
)
from ethhook.deliver.ed25519 import generate_key_pair
from ethhook.deliver.signing import generate_secret
from ethhook.exceptions import InputError
from ethhook.service import public
from ethhook.service.apps import target_application
from ethhook.service.changes import EndpointChanges
from ethhook.service.filters import set_filters, start_blocks
from ethhook.service.finality import check_chain_tags, check_finality_with
from ethhook.service.limits import check_endpoint_quota, check_filter_rows
from ethhook.service.pages import DEFAULT_LIMIT, Page, check_limit, decode_cursor, page_of
from ethhook.service.rows import get_endpoint
from ethhook.service.scope import Scope, scoped
from ethhook.service.validation import (
    MAX_REASON_LENGTH,
    EndpointSpec,
    about,
    check_grace,
    check_text,
    check_where,
)
from ethhook.workqueue import (
    DisableTrigger,
    disable_endpoints,
    discard_backlog,
    paused_by,
    resume_backlog,
)


@dataclass(frozen=True)
class EndpointWithSecret:
    """An endpoint just created or re-keyed, with the secret that signs its webhooks now (None
    for ed25519: its public key is the endpoint's `public_key`)."""

    endpoint: public.Endpoint
    secret: str | None

    def as_public(self) -> public.EndpointWithSecret:
        return public.EndpointWithSecret(**dict(self.endpoint), secret=self.secret)


@dataclass(frozen=True)
class EndpointDetails:
    """`show`: the endpoint and how many of its deliveries are in each status."""

    endpoint: public.Endpoint
    deliveries: dict[str, int]
    paused: public.OrderedPause | None = None

    def as_public(self, circuit_breaker: str) -> public.EndpointDetails:
        return public.EndpointDetails(
            **dict(self.endpoint),
            deliveries=self.deliveries,
            circuit_breaker=circuit_breaker,
            paused=self.paused,
        )


def view(endpoint: Endpoint) -> public.Endpoint:
    return public.Endpoint(
        id=endpoint.id,
        application_id=endpoint.application_id,
        name=endpoint.name,
        url=endpoint.url,
        active=endpoint.active,
        disabled_reason=endpoint.disabled_reason,
        chains=endpoint.chain_ids,
        contracts=endpoint.contracts,
        events=list(endpoint.event_signatures),
        topics=endpoint.topics,
        where=list(endpoint.conditions or ()),
        confirmations=endpoint.confirmations,
        finality=endpoint.finality,
        lifecycle=endpoint.lifecycle,
        rate_limit=endpoint.rate_limit_per_s,
        retry_schedule=endpoint.retry_schedule_s,
        created_at=endpoint.created_at,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
        failing_since=endpoint.failing_since,
        signing=endpoint.signing,
        public_key=endpoint.public_key,
        ordered=endpoint.ordered,
        from_block=endpoint.from_block,
        backfilling=endpoint.backfilling,
        live_only=endpoint.live_only,
        backlog=None
        if endpoint.active
        else ("discarded" if endpoint.discard_while_disabled else "kept"),
    )


def new_keys(endpoint: Endpoint) -> None:
    """Give the endpoint a new secret (hmac) or key pair (ed25519)."""
    if endpoint.signing == "ed25519":
        endpoint.secret, endpoint.public_key = generate_key_pair()
    else:
        endpoint.secret = generate_secret()


def shown_secret(endpoint: Endpoint) -> str | None:
    """The secret users may see: an hmac endpoint's; never an ed25519 private key."""
    return endpoint.secret if endpoint.signing == "hmac" else None


def create_endpoint(
    session: Session, spec: EndpointSpec, *, scope: Scope, application_id: int | None = None
) -> EndpointWithSecret:
    """Register an endpoint in `application_id` (default: the scope's own application, or
    `default` for the operator); an application's key may have `spec.app_max_endpoints`."""
    app_id = target_application(session, application_id, scope=scope)
    if scope is not None:
        check_endpoint_quota(session, app_id, spec.app_max_endpoints)
    check_chain_tags(session, spec.finality, spec.chain_ids)
    endpoint = Endpoint(
        application_id=app_id,
        name=spec.name,
        url=spec.url,
        signing=spec.signing,
        confirmations=spec.confirmations,
        finality=spec.finality,
        lifecycle=spec.lifecycle,
        rate_limit_per_s=spec.rate_limit_per_s,
        retry_schedule_s=list(spec.retry_schedule_s) if spec.retry_schedule_s else None,
        ordered=spec.ordered,
        active=True,
        from_block=spec.from_block,
        # Left out by the matcher until its backfill job reaches the listener (replay.backfill).
        backfilling=spec.from_block is not None,
        live_only=spec.live_only,
    )
    new_keys(endpoint)
    set_filters(endpoint, spec.chain_ids, spec.contracts, spec.topics, spec.signatures, spec.where)
    endpoint.start_blocks = start_blocks(session, spec.chain_ids, spec.from_block)
    session.add(endpoint)
    session.flush()
    return EndpointWithSecret(view(endpoint), shown_secret(endpoint))


def list_endpoints(
    session: Session,
    *,
    scope: Scope,
    application_id: int | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[public.Endpoint]:
    """The scope's endpoints in id order (only `application_id`'s, when given)."""
    check_limit(limit)
    query = scoped(select(Endpoint), Endpoint.application_id, scope)
    if application_id is not None:
        query = query.where(Endpoint.application_id == application_id)
    query = (
        query.where(Endpoint.id > decode_cursor(cursor))
        .order_by(Endpoint.id)
        .limit(limit + 1)
        .options(selectinload(Endpoint.filters))
    )
    return page_of([view(e) for e in session.scalars(query)], limit)


def update_endpoint(
    session: Session, endpoint_id: int, changes: EndpointChanges, *, scope: Scope
) -> public.Endpoint:
    """Change an endpoint in place: its id, secret and deliveries stay. New filters replace the
    old rows when chains, contracts, events or conditions are given (the others are kept) and
    apply to events matched from then on; a new confirmations count, finality or lifecycle
    applies to deliveries created from then on. Kept conditions are checked again against a new event."""
    endpoint = get_endpoint(session, endpoint_id, scope=scope)
    given = changes.given
    if "url" in given:
        endpoint.url = changes.url
    if "name" in given:
        endpoint.name = changes.name
    if "confirmations" in given:
        endpoint.confirmations = changes.confirmations
    if "finality" in given:
        endpoint.finality = changes.finality
    if "lifecycle" in given:
        endpoint.lifecycle = changes.lifecycle
    if given & {"confirmations", "finality"}:
        with about("finality"):
            check_finality_with(endpoint.finality, endpoint.confirmations)
    if "rate_limit" in given:
        endpoint.rate_limit_per_s = changes.rate_limit_per_s
    if "retry_schedule" in given:
        schedule = changes.retry_schedule_s
        endpoint.retry_schedule_s = list(schedule) if schedule else None
    if "ordered" in given:  # claims made from the commit on follow it
        endpoint.ordered = changes.ordered
    if changes.changes_filters:
        events = "events" in given
        topics = changes.topics if events else tuple(endpoint.topics)
        signatures = changes.signatures if events else tuple(endpoint.event_signatures)
        where = changes.where if "where" in given else tuple(endpoint.conditions or ())
        chain_ids = changes.chain_ids if "chains" in given else tuple(endpoint.chain_ids)
        contracts = changes.contracts if "contracts" in given else tuple(endpoint.contracts)
        check_filter_rows(chain_ids, contracts, topics, changes.max_filter_rows)
        with about("where"):
            conditions = check_where(where, topics, signatures)
        set_filters(endpoint, chain_ids, contracts, topics, signatures, conditions)
    if given & {"finality", "chains"}:
        check_chain_tags(session, endpoint.finality, endpoint.chain_ids)
    session.flush()
    return view(endpoint)


def show_endpoint(session: Session, endpoint_id: int, *, scope: Scope) -> EndpointDetails:
    endpoint = get_endpoint(session, endpoint_id, scope=scope)
    counts = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.endpoint_id == endpoint.id)
        .group_by(Delivery.status)
    ).all()
    return EndpointDetails(
        view(endpoint),
        {status: count for status, count in counts},
        ordered_pause(session, endpoint),
    )


def ordered_pause(session: Session, endpoint: Endpoint) -> public.OrderedPause | None:
    """Why an `--ordered=pause` endpoint sends nothing: its head is dead-lettered."""
    held = paused_by(session, endpoint)
    if held is None:
        return None
    delivery_id, sequence = held
    return public.OrderedPause(
        delivery_id=delivery_id,
        sequence=sequence,
        reason=f"delivery {delivery_id} (sequence {sequence}) is dead-lettered and the "
        f"deliveries after it wait: retry it (ethhook delivery retry {delivery_id}) or skip "
        "past it (endpoint update --ordered=skip-dead)",
    )


def endpoint_secrets(
    session: Session, endpoint_id: int, *, scope: Scope, now: datetime | None = None
) -> public.Secrets:
    """What `ethhook endpoint secret` shows: only the secrets that sign at `now` (for ed25519,
    the public keys of the private keys that sign)."""
    endpoint = get_endpoint(session, endpoint_id, scope=scope)
    signs = endpoint.previous_secret_signs(now or utcnow())
    hmac = endpoint.signing == "hmac"
    return public.Secrets(
        id=endpoint.id,
        signing=endpoint.signing,
        secret=endpoint.secret if hmac else None,
        previous_secret=endpoint.previous_secret if signs and hmac else None,
        public_key=endpoint.public_key,
        previous_public_key=endpoint.previous_public_key if signs else None,
        previous_secret_expires_at=endpoint.previous_secret_expires_at if signs else None,
    )


def set_active(
    session: Session,
    endpoint_id: int,
    active: bool,
    reason: str | None,
    *,
    scope: Scope,
    discard: bool = False,
) -> public.Endpoint:
    """Enable (the deliveries that waited, and those of the events matched meanwhile, go out,
    oldest first) or disable an endpoint: its backlog is kept (bounded by retention) unless
    `discard`, which ends its unsent deliveries as `discarded` and keeps none until enabled."""
    if reason is not None:
        check_text(reason, "--reason", MAX_REASON_LENGTH)
    if active and discard:
        raise InputError("--discard applies to disable only")
    endpoint = get_endpoint(session, endpoint_id, scope=scope)
    now = utcnow()
    if active:
        was_disabled = not endpoint.active
        endpoint.active = True
        endpoint.disabled_reason = None
        endpoint.disabled_at = None
        endpoint.discard_while_disabled = False
        endpoint.failing_since = None
        endpoint.failing_notified_at = None
        session.flush()
        if was_disabled:  # an active endpoint's retries keep their schedule
            resume_backlog(session, endpoint.id, now)
        return view(endpoint)
    reason = reason or "disabled"
    if endpoint.active:
        session.flush()
        disable_endpoints(session, [endpoint.id], reason, now, DisableTrigger.MANUAL, discard)
        session.refresh(endpoint)
        return view(endpoint)
    # Already disabled: a new reason, and --discard drops what it kept.
    endpoint.disabled_reason = reason
    if discard:
        endpoint.discard_while_disabled = True
        session.flush()
        discard_backlog(session, endpoint.id, now)
    return view(endpoint)


def rotate_secret(
    session: Session,
    endpoint_id: int,
    grace_s: float,
    *,
    scope: Scope,
    now: datetime | None = None,
) -> EndpointWithSecret:
    """A new secret (ed25519: key pair); the old one keeps signing beside it for `grace_s`
    seconds."""
    check_grace(grace_s)
    now = now or utcnow()
    endpoint = get_endpoint(session, endpoint_id, scope=scope)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_public_key = endpoint.public_key
    endpoint.previous_secret_expires_at = now + timedelta(seconds=grace_s)
    new_keys(endpoint)
    return EndpointWithSecret(view(endpoint), shown_secret(endpoint))


def delete_endpoint(session: Session, endpoint_id: int, *, scope: Scope) -> None:
    """Delete the endpoint with its filters, deliveries and attempts.

    The history tables have no foreign keys (a partition drop must not reach other tables), so
    its deliveries and attempts are deleted here, after its row is locked: a matcher inserting
    deliveries for it holds the row FOR KEY SHARE (workqueue.rows.live_rows), so either its rows
    are committed before these deletes look, or it finds the endpoint gone.
    """
    endpoint = get_endpoint(session, endpoint_id, scope=scope)
    session.execute(select(Endpoint.id).where(Endpoint.id == endpoint.id).with_for_update())
    theirs = select(Delivery.id).where(Delivery.endpoint_id == endpoint.id)
    session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(theirs)))
    session.execute(delete(Delivery).where(Delivery.endpoint_id == endpoint.id))
    session.delete(endpoint)


def breaker_state(endpoint_id: int, settings: Settings) -> str:
    """The endpoint's circuit breaker as every deliver worker sees it (kept in Redis)."""
    import redis

    from ethhook.deliver.protect import EndpointBreaker, redis_client

    breaker = EndpointBreaker(
        redis_client(settings.redis_url),
        endpoint_id,
        settings.breaker_fail_max,
        settings.breaker_reset_timeout_s,
        1.0,
    )
    try:
        return breaker.state()
    except redis.RedisError as exc:
        return f"unknown (Redis unreachable: {exc})"
