"""Explain a transaction: for each of its logs, whether EthHook stored it, and for each of the
caller's endpoints whether it matched, the first check that failed, and the deliveries with every
attempt. One function for `ethhook explain`, `GET /v1/explain` and the console's search box.

The logs come from the database; when it holds none of the transaction's, from the receipt on the
chain's node (`source: node`). The node's receipt, when there is a node to ask, also says which
block to read: the events table has no index on the transaction hash (one costs every stored
event a random B-tree insert), and the block's number and time find the rows through
`ix_events_chain_id_block_number` in one partition. Each endpoint's verdict is decided from
these facts by `service.verdicts`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, load_only, selectinload

from ethhook.config import BUILTIN_CHAINS, ChainConfig, Settings
from ethhook.db.models import ChainCursor, Delivery, DeliveryStatus, Endpoint, Event, utcnow
from ethhook.db.partition_plan import event_time
from ethhook.exceptions import EthHookError, InputError, NotFoundError, TransientError
from ethhook.listen.replay import TransactionLogs, transaction_logs
from ethhook.match.service import FilterRow
from ethhook.service import public
from ethhook.service.hashes import parse_tx_hash
from ethhook.service.scope import Scope, scoped
from ethhook.service.validation import parse_chain
from ethhook.service.verdicts import ChainFacts, EndpointFacts, LogFacts, verdict
from ethhook.types import ChainEvent, webhook_id_for
from ethhook.workqueue import Head, head_of

log = logging.getLogger(__name__)

SOURCE_DATABASE = "database"
SOURCE_NODE = "node"
# (log, endpoint) pairs in one answer: a transaction of 500 logs explained to 1,000 endpoints
# would be half a million entries (tens of MB of JSON); past this, name one endpoint.
MAX_ANSWERS = 20_000


def explain_transaction(
    session: Session,
    settings: Settings,
    chain: str,
    tx_hash: str,
    *,
    scope: Scope,
    endpoint_id: int | None = None,
) -> public.Explanation:
    """The transaction explained to `scope` (an application sees only its own endpoints), for
    every endpoint or for `endpoint_id` alone. NotFoundError for a chain EthHook does not know, a
    transaction neither stored nor known to the chain's node, or an endpoint not in scope;
    InputError for a malformed hash or an answer larger than MAX_ANSWERS; TransientError when
    the node fails and the database holds none of the transaction's logs.

    The node's receipt (when a node URL is set) says which block holds the transaction, so the
    stored events are read through the (chain_id, block_number) index in the one partition of
    the block's time; without it, every partition is scanned for the hash. The session's
    transaction is committed before the node is asked: nothing is held while it answers."""
    tx = parse_tx_hash(tx_hash)
    chain_id = _chain_id(chain, settings)
    if endpoint_id is not None:
        _check_endpoint(session, endpoint_id, scope)
    session.commit()
    receipt, failure = _from_node(settings, chain_id, tx, scope)
    query = select(Event).where(Event.chain_id == chain_id, Event.transaction_hash == tx)
    if receipt is not None:
        query = query.where(
            Event.block_number == receipt.block_number,
            Event.event_at == event_time(receipt.block_timestamp),
        )
    rows = session.scalars(query.order_by(Event.block_number, Event.log_index)).all()
    facts = _chain_facts(session, settings, chain_id)
    if rows:
        logs = [LogFacts(_event(r), stored=True, matched_at=r.matched_at) for r in rows]
        source, block = SOURCE_DATABASE, _block_of(logs)
    elif receipt is not None:
        logs = [LogFacts(e, stored=False, matched_at=None) for e in receipt.events]
        source, block = SOURCE_NODE, (receipt.block_number, receipt.block_hash)
    else:
        raise failure
    _check_size(session, len(logs), scope, endpoint_id)
    endpoints = _endpoints(session, scope, endpoint_id)
    now = utcnow()  # what is due is due by one clock, for the deliveries and their heads
    deliveries, next_at = (
        _deliveries(session, rows, {e.id for e in endpoints}, now) if rows else ({}, {})
    )
    endpoints = _with_heads(session, endpoints, deliveries, now)
    explained = [
        public.ExplainLog(
            log_index=item.event.log_index,
            address=item.event.address,
            topic0=item.event.topic0,
            event_id=item.event.event_id,
            stored=item.stored,
            endpoints=[
                verdict(
                    item,
                    endpoint,
                    deliveries.get((item.event.event_id, endpoint.id), []),
                    facts,
                    settings.chain_name,
                    next_at,
                )
                for endpoint in endpoints
            ],
        )
        for item in logs
    ]
    return public.Explanation(
        chain_id=chain_id,
        transaction_hash=tx,
        block_number=block[0],
        block_hash=block[1],
        logs=explained,
        source=source,
    )


def _chain_id(chain: str, settings: Settings) -> int:
    """The chain's id; NotFoundError (one line) for a name or an id EthHook does not know."""
    try:
        chain_id = parse_chain(chain, settings)
    except InputError as exc:
        raise NotFoundError(str(exc)) from None
    if settings.chain_by_id(chain_id) is None and chain_id not in BUILTIN_CHAINS.values():
        names = ", ".join(sorted({c.name for c in settings.chains} | set(BUILTIN_CHAINS)))
        raise NotFoundError(
            f"unknown chain {chain_id}: EthHook knows {names} (more come from ETHHOOK_CHAINS_FILE)"
        )
    return chain_id


def _event(row: Event) -> ChainEvent:
    return ChainEvent(
        chain_id=row.chain_id,
        block_number=row.block_number,
        block_hash=row.block_hash,
        block_timestamp=row.block_timestamp,
        transaction_hash=row.transaction_hash,
        transaction_index=row.transaction_index,
        log_index=row.log_index,
        address=row.address,
        topics=list(row.topics),
        data=row.data,
        removed=row.removed,
    )


def _block_of(logs: Sequence[LogFacts]) -> tuple[int, str]:
    """The transaction's block: that of its canonical logs (after a reorg the database may also
    hold the logs of the block it was first mined in, marked removed)."""
    live = [item.event for item in logs if not item.event.removed] or [logs[-1].event]
    return live[0].block_number, live[0].block_hash


def _endpoints(session: Session, scope: Scope, endpoint_id: int | None) -> list[EndpointFacts]:
    # Only what the checks read: loading whole rows would decrypt every endpoint's secrets.
    e = Endpoint
    columns = (e.id, e.active, e.disabled_reason, e.discard_while_disabled, e.confirmations)
    query = (
        select(e)
        .options(
            load_only(
                *columns, e.finality, e.ordered, e.created_at, e.conditions, e.event_signatures
            ),
            selectinload(e.filters),
        )
        .order_by(e.id)
    )
    if endpoint_id is not None:
        query = query.where(e.id == endpoint_id)
    return [
        EndpointFacts(
            id=row.id,
            active=row.active,
            disabled_reason=row.disabled_reason,
            confirmations=row.confirmations,
            finality=row.finality,
            created_at=row.created_at,
            signatures=list(row.event_signatures),
            rows=_filter_rows(row),
            discard=row.discard_while_disabled,
            ordered=row.ordered,
        )
        for row in session.scalars(scoped(query, Endpoint.application_id, scope))
    ]


def _with_heads(
    session: Session,
    endpoints: list[EndpointFacts],
    deliveries: dict[tuple[str, int], list[public.ExplainDelivery]],
    now: datetime,
) -> list[EndpointFacts]:
    """The ordered endpoints that have a pending delivery in the answer, with their heads (what
    such a delivery may wait for)."""
    pending = {
        endpoint_id
        for (_, endpoint_id), found in deliveries.items()
        if any(d.status == DeliveryStatus.PENDING for d in found)
    }
    return [
        replace(e, head=_due_now(head_of(session, e.id, e.ordered), now))
        if e.ordered is not None and e.id in pending
        else e
        for e in endpoints
    ]


def _due_now(head: Head | None, now: datetime) -> Head | None:
    """The head, its next try left out once it is due (as `_deliveries` leaves out theirs)."""
    if head is None or head.next_attempt_at is None or head.next_attempt_at > now:
        return head
    return replace(head, next_attempt_at=None)


def _check_endpoint(session: Session, endpoint_id: int, scope: Scope) -> None:
    query = select(Endpoint.id).where(Endpoint.id == endpoint_id)
    if session.scalar(scoped(query, Endpoint.application_id, scope)) is None:
        raise NotFoundError(f"no endpoint with id {endpoint_id} (see `ethhook endpoint list`)")


def _check_size(session: Session, logs: int, scope: Scope, endpoint_id: int | None) -> None:
    """Refuse an answer of more than MAX_ANSWERS (log, endpoint) pairs before it is built."""
    if endpoint_id is not None:
        endpoints = 1
    else:
        count = select(func.count()).select_from(Endpoint)
        endpoints = session.scalar(scoped(count, Endpoint.application_id, scope)) or 0
    if logs * endpoints > MAX_ANSWERS:
        raise InputError(
            f"the transaction has {logs} logs and there are {endpoints} endpoints: "
            f"{logs * endpoints:,} answers, at most {MAX_ANSWERS:,}; explain it for one endpoint "
            "(--endpoint ID, endpoint_id=ID)"
        )


def _chain_facts(session: Session, settings: Settings, chain_id: int) -> ChainFacts:
    cursor = session.get(ChainCursor, chain_id)
    return ChainFacts(
        chain_id=chain_id,
        name=settings.chain_name(chain_id),
        cursor=cursor.block_number if cursor else None,
        head=(cursor.head_number or cursor.block_number) if cursor else None,
    )


def _deliveries(
    session: Session, rows: Sequence[Event], endpoint_ids: set[int], now: datetime
) -> tuple[dict[tuple[str, int], list[public.ExplainDelivery]], dict[int, datetime]]:
    """The deliveries of the stored events to the caller's endpoints, with their attempts; read
    through the key that leads with event_id, in the events' partitions only. Beside them, when
    each pending one that is due later than now is tried next."""
    query = (
        select(Delivery)
        .where(
            Delivery.event_id.in_([r.id for r in rows]),
            Delivery.event_at.in_({r.event_at for r in rows}),
        )
        .options(joinedload(Delivery.attempt_rows))
        .order_by(Delivery.id)
    )
    found: dict[tuple[str, int], list[public.ExplainDelivery]] = defaultdict(list)
    next_at: dict[int, datetime] = {}
    for d in session.scalars(query).unique():
        if d.endpoint_id not in endpoint_ids:
            continue
        due = d.next_attempt_at
        if d.status == DeliveryStatus.PENDING and due is not None and due > now:
            next_at[d.id] = due
        found[(d.event_id, d.endpoint_id)].append(
            public.ExplainDelivery(
                id=d.id,
                webhook_id=webhook_id_for(d.endpoint_id, d.event_id, d.kind),
                kind=d.kind,
                status=d.status,
                sequence=d.sequence,
                attempts=[
                    public.ExplainAttempt(
                        attempt_number=a.attempt_number,
                        status_code=a.status_code,
                        error=a.error,
                        started_at=a.started_at,
                        duration_ms=a.duration_ms,
                    )
                    for a in d.attempt_rows
                ],
            )
        )
    return found, next_at


def _from_node(
    settings: Settings, chain_id: int, tx: str, scope: Scope
) -> tuple[TransactionLogs | None, EthHookError]:
    """The transaction's receipt from the chain's node, or None and the error to raise should
    the database hold none of its logs either."""
    config = settings.chain_by_id(chain_id) or ChainConfig(settings.chain_name(chain_id), chain_id)
    where = f"{config.name} ({chain_id})"
    if not config.enabled:
        variable = config.name.upper()
        return None, NotFoundError(
            f"transaction {tx} on {where}: EthHook stored none of its logs, and no node URL is set "
            f"to ask ({variable}_HTTP or {variable}_WS)"
        )
    try:
        receipt = transaction_logs(config, tx)
    except TransientError as exc:
        log.warning("explain.node.failed chain=%s error=%s", config.name, exc)
        if scope is None:  # the operator's own node: its words, with the URL redacted
            return None, TransientError(f"EthHook stored none of the transaction's logs; {exc}")
        return None, TransientError(
            f"EthHook stored none of the transaction's logs, and the node of {where} failed to "
            "answer"
        )
    if receipt is None:
        return None, NotFoundError(
            f"transaction {tx} on {where}: EthHook stored none of its logs and the chain's node "
            "does not know it (check the hash and the chain)"
        )
    return receipt, NotFoundError(f"transaction {tx} on {where}")


def _filter_rows(endpoint: Endpoint) -> list[FilterRow]:
    """The endpoint's filter rows as the matcher's query returns them."""
    conditions = endpoint.conditions or None
    return [
        FilterRow(
            endpoint_id=endpoint.id,
            chain_id=f.chain_id,
            address=f.address,
            topic0=f.topic0,
            confirmations=(
                endpoint.confirmations
                if endpoint.active or not endpoint.discard_while_disabled
                else None
            ),
            conditions=conditions,
            signatures=endpoint.event_signatures if conditions else None,
            active=endpoint.active,
        )
        for f in endpoint.filters
    ]
