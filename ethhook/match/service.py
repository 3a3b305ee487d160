"""Stored events → delivery rows: find endpoints with ONE query, insert deliveries in bulk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Select,
    SmallInteger,
    String,
    and_,
    any_,
    case,
    cast,
    false,
    func,
    literal_column,
    not_,
    null,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session

from ethhook.abi import decode_log_values
from ethhook.conditions import Condition, canonical_args, compiled, event_signature
from ethhook.db.arrays import array_literal
from ethhook.db.dialect import array, is_postgres
from ethhook.db.models import (
    DeliveryStatus,
    Endpoint,
    EndpointFilter,
    EndpointTopicKey,
    EventKind,
    Finality,
)
from ethhook.db.partition_plan import event_time
from ethhook.match.finality import LIFECYCLE_SUFFIX, delivery_kinds, parse_mode, release_of
from ethhook.types import ChainEvent
from ethhook.workqueue import (
    DispatchGroup,
    NewLeases,
    TimeRange,
    claim_unmatched,
    delivery_row,
    insert_deliveries,
)


@dataclass(frozen=True)
class Match:
    endpoint_id: int
    confirmations: int
    finality: str = Finality.LATEST
    lifecycle: bool = False
    # False: the endpoint is disabled and keeps its backlog; the delivery is made held
    # (workqueue.backlog) and sent when the endpoint is enabled.
    active: bool = True

    @property
    def kinds(self) -> tuple[str, ...]:
        """The deliveries an event makes for this endpoint (match.finality)."""
        return delivery_kinds(self.confirmations, self.finality, self.lifecycle)


def find_matches(
    session: Session, events: Sequence[ChainEvent], live: bool = True
) -> dict[str, list[Match]]:
    """The endpoints each event goes to, found with one indexed query for the whole batch.
    `live` (the matcher's) leaves out endpoints whose --from-block backfill is running: their
    history, and the events up to the listener's cursor when it ends, are the backfill's."""
    if not events:
        return {}
    if not is_postgres(session):
        rows = session.execute(match_query(events, arrays=False, live=live)).all()
        return pair_with_filters(events, [tuple(row) for row in rows])
    # On PostgreSQL the statement depends only on which branches the batch needs, its values
    # being arrays: it is compiled once per shape and sent as it is, since compiling it for every
    # batch would be the largest part of the find phase's Python time (bench/RESULTS.md §0).
    batch = _Batch(events, arrays=True)
    shape = (bool(batch.pairs), bool(batch.words), live)
    if shape not in _COMPILED:
        query = match_query(events, live=live)
        _COMPILED[shape] = str(query.compile(dialect=session.get_bind().dialect))
    result = session.connection().exec_driver_sql(_COMPILED[shape], batch.values())
    return pair_with_filters(events, [tuple(row) for row in result])


# The PostgreSQL statement of find_matches by (the batch has topic0s, the batch has topic words,
# live).
_COMPILED: dict[tuple[bool, bool, bool], str] = {}


class _Batch:
    """What the query asks about a batch, as bound values: on PostgreSQL one array each (a short
    statement whatever the batch; PostgreSQL plans an IN list of (contract, topic0) pairs with one
    index arm per pair, which costs more than running it), elsewhere IN lists."""

    def __init__(self, events: Sequence[ChainEvent], arrays: bool) -> None:
        self.arrays = arrays
        self.addresses = sorted({e.address for e in events})
        self.chains = sorted({e.chain_id for e in events})
        self.topics = sorted({e.topic0 for e in events if e.topic0 is not None})
        self.pairs = sorted({(e.address, e.topic0) for e in events if e.topic0 is not None})
        self.words = sorted({word for e in events for word in e.topics[1:4]})
        self._params: dict[str, Any] = {}

    def values(self) -> dict[str, Any]:
        """The statement's bound values by name (the arrays' names in match_query)."""
        values: dict[str, list[Any]] = {
            "addresses": self.addresses,
            "chains": self.chains,
            "topics": self.topics,
            "pair_addresses": [a for a, _ in self.pairs],
            "pair_topics": [t for _, t in self.pairs],
            "words": self.words,
        }
        # As db.dialect.array binds them: one text value each, cast by the statement.
        return {name: array_literal(v) for name, v in values.items()}

    def any_of(self, column: Any, name: str, values: list[Any], item: Any) -> ColumnElement[bool]:
        """`column` is one of `values` (bound once per statement, under `name`)."""
        if not self.arrays:
            in_list: ColumnElement[bool] = column.in_(values)
            return in_list
        if name not in self._params:
            self._params[name] = array(name, values, item)
        in_array: ColumnElement[bool] = column == any_(self._params[name])
        return in_array

    def pairs_table(self) -> Any:
        """The batch's (contract, topic0) pairs as rows, for PostgreSQL to join on its index."""
        addresses = array("pair_addresses", [a for a, _ in self.pairs], String)
        topics = array("pair_topics", [t for _, t in self.pairs], String)
        return func.unnest(addresses, topics).table_valued("address", "topic0").render_derived()


def match_query(
    events: Sequence[ChainEvent], arrays: bool = True, live: bool = True
) -> Select[Any] | CompoundSelect:
    """The one query that finds the filter rows of a (non-empty) batch's endpoints; `arrays`
    (PostgreSQL's) binds each set of values as one array, else as an IN list (SQLite); `live`
    leaves out backfilling endpoints (find_matches)."""
    batch = _Batch(events, arrays)
    f = EndpointFilter
    columns, settings = _filter_columns(live)
    unkeyed = (*columns, cast(null(), SmallInteger), cast(null(), String), *settings)
    on_chain = or_(
        batch.any_of(f.chain_id, "chains", batch.chains, BigInteger), f.chain_id.is_(None)
    )
    on_topic = or_(batch.any_of(f.topic0, "topics", batch.topics, String), f.topic0.is_(None))
    on_address = or_(
        batch.any_of(f.address, "addresses", batch.addresses, String), f.address.is_(None)
    )
    # Rows of endpoints without a topic key: those naming a contract and an event, through the
    # partial (address, topic0) index, one probe per (contract, topic0) pair of the batch (a
    # contract's filters for events that are in the batch but never on that contract are never
    # read)…
    branches: list[Select[Any]] = []
    if batch.pairs and batch.arrays:
        pairs = batch.pairs_table()
        on_pair = and_(f.address == pairs.c.address, f.topic0 == pairs.c.topic0)
        exact = select(*unkeyed).select_from(pairs).join(f, on_pair)
        branches.append(exact.where(not_(f.keyed), on_chain))
    elif batch.pairs:
        in_pairs = tuple_(f.address, f.topic0).in_(batch.pairs)
        branches.append(select(*unkeyed).where(not_(f.keyed), on_chain, in_pairs))
    # …those with any contract or any event…
    wildcard = or_(f.address.is_(None), f.topic0.is_(None))
    branches.append(select(*unkeyed).where(not_(f.keyed), wildcard, on_address, on_chain, on_topic))
    # …and rows of endpoints keyed on a topic word that some event of the batch carries.
    if batch.words:
        branches.append(_keyed_rows(batch, columns, settings, [on_address, on_chain, on_topic]))
    return branches[0] if len(branches) == 1 else union_all(*branches)


def _filter_columns(live: bool) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """A filter row's columns and its endpoint's settings.

    The endpoint's settings come from correlated subqueries (confirmations NULL when it takes
    nothing: disabled with --discard, or with `live`, backfilling; conditions NULL when it has
    none; `active` false when it is disabled and keeps its backlog), not a join: PostgreSQL then
    probes the primary key once per matching filter row, where a join made it hash the whole
    endpoints table (a sequential scan growing with every endpoint; see bench/RESULTS.md).
    """
    f = EndpointFilter
    takes = or_(Endpoint.active.is_(True), Endpoint.discard_while_disabled.is_(False))
    sends = [Endpoint.id == f.endpoint_id, takes]
    if live:
        sends.append(Endpoint.backfilling.is_(False))
    confirmations_of = select(Endpoint.confirmations).where(*sends).scalar_subquery()
    conditions_of = select(Endpoint.conditions).where(Endpoint.id == f.endpoint_id)
    signatures_of = select(Endpoint.event_signatures).where(
        Endpoint.id == f.endpoint_id, Endpoint.conditions.is_not(None)
    )
    # Its finality and lifecycle as one text (match.finality.parse_mode): one more probe.
    # (Literals, not bound values: the PostgreSQL statement is compiled once and sent as it is.)
    suffix = literal_column(f"'{LIFECYCLE_SUFFIX}'", String)
    mode = Endpoint.finality + case((Endpoint.lifecycle, suffix), else_=literal_column("''"))
    mode_of = select(mode).where(Endpoint.id == f.endpoint_id)
    active_of = select(Endpoint.active).where(Endpoint.id == f.endpoint_id)
    columns = (f.endpoint_id, f.chain_id, f.address, f.topic0, confirmations_of)
    settings = (
        conditions_of.scalar_subquery(),
        signatures_of.scalar_subquery(),
        mode_of.scalar_subquery(),
        active_of.scalar_subquery(),
    )
    return columns, settings


def _keyed_rows(
    batch: _Batch, columns: tuple[Any, ...], settings: tuple[Any, ...], where: list[Any]
) -> Select[Any]:
    """Rows of endpoints keyed on a topic word of the batch, through the index on the key's value:
    a million endpoints each keyed on their own address cost one index probe per word of the
    batch, not a scan of the token's million filter rows."""
    f, k = EndpointFilter, EndpointTopicKey
    keyed: list[Any] = [batch.any_of(k.value, "words", batch.words, String), f.keyed, *where]
    if not batch.arrays:
        # (On PostgreSQL, a contract and an event that are in the batch but never together are
        # left to pair_with_filters, which files rows by contract and event anyway.)
        pair_match: Any = tuple_(f.address, f.topic0).in_(batch.pairs) if batch.pairs else false()
        keyed.append(or_(f.address.is_(None), f.topic0.is_(None), pair_match))
    return (
        select(*columns, k.position, k.value, *settings)
        .select_from(k)
        .join(f, f.endpoint_id == k.endpoint_id)
        .where(*keyed)
    )


class FilterRow(NamedTuple):
    """One filter row of the batched query (None = any chain, contract or event)."""

    endpoint_id: int
    chain_id: int | None
    address: str | None
    topic0: str | None
    confirmations: int | None  # None: the endpoint takes nothing (disabled with --discard)
    position: int | None = None  # the topic key: the log's topics[position] must be `value`
    value: str | None = None
    conditions: list[str] | None = None  # --where, as given
    signatures: list[str] | None = None  # the endpoint's event, when it has conditions
    mode: str | None = None  # its finality and lifecycle (match.finality.parse_mode)
    active: bool = True  # False: disabled, keeping its backlog


# Where pair_with_filters files a row: (address, topic0, topic position, topic word), None = any.
_Slot = tuple[str | None, str | None, int | None, str | None]
_Candidate = tuple[FilterRow, tuple[Condition, ...]]


def _slots(event: ChainEvent) -> list[_Slot]:
    """Every slot a row that fits this event's contract, topic0 and topics may be filed in."""
    slots: list[_Slot] = []
    for address in (event.address, None):
        for topic0 in {event.topic0, None}:
            slots.append((address, topic0, None, None))
            slots += [(address, topic0, i, event.topics[i]) for i in range(1, len(event.topics))]
    return slots


def event_args(event: ChainEvent, signature: str) -> dict[str, Any] | None:
    """The event decoded with `signature`, arguments in canonical form; None when it does not
    fit the signature (what --where conditions are checked against, here and by match.explain)."""
    values = decode_log_values(signature, event.topics, event.data)
    return None if values is None else canonical_args(event_signature(signature), values)


def pair_with_filters(
    events: Sequence[ChainEvent], rows: Iterable[tuple[Any, ...]]
) -> dict[str, list[Match]]:
    """Each event's endpoints, from the filter rows the batched query found (no database):
    the rows' chain, contract, event and topic key, then the endpoints' --where conditions.

    Rows are filed by (contract, topic0, topic key), so an event looks at the rows that fit it
    only: a batch of 100 Transfers and the rows of 100 endpoints keyed on their own recipient
    cost 100 lookups, not 100 × 100 comparisons."""
    filed: dict[_Slot, list[_Candidate]] = defaultdict(list)
    for raw in rows:
        row = FilterRow(*raw)
        if row.confirmations is None:  # the endpoint takes nothing now
            continue
        where = (
            compiled(row.signatures[0], tuple(row.conditions))
            if row.conditions and row.signatures
            else ()
        )
        filed[(row.address, row.topic0, row.position, row.value)].append((row, where))
    matches: dict[str, list[Match]] = {}
    for event in events:
        found: dict[int, Match] = {}
        decoded: dict[str, dict[str, Any] | None] = {}  # once per signature
        for slot in _slots(event):
            for row, where in filed.get(slot, ()):
                if row.endpoint_id in found or row.chain_id not in (None, event.chain_id):
                    continue
                if row.conditions:
                    if not (where and row.signatures):
                        continue
                    signature = row.signatures[0]
                    if signature not in decoded:
                        decoded[signature] = event_args(event, signature)
                    args = decoded[signature]
                    if args is None or not all(c.holds(args) for c in where):
                        continue
                assert row.confirmations is not None
                finality, lifecycle = parse_mode(row.mode)
                found[row.endpoint_id] = Match(
                    row.endpoint_id,
                    row.confirmations,
                    finality,
                    lifecycle,
                    active=row.active is not False,
                )
        if found:
            matches[event.event_id] = sorted(found.values(), key=lambda m: m.endpoint_id)
    return matches


def create_deliveries(
    session: Session,
    events: Sequence[ChainEvent],
    matches: dict[str, list[Match]],
    now: datetime,
) -> list[DispatchGroup]:
    """Insert each (endpoint, event)'s deliveries; returns the instant ones to enqueue now.

    An endpoint that waits for confirmations or a chain tag gets a `waiting` confirmed delivery
    that the beat job releases once the block is final enough; a lifecycle endpoint gets both an
    instant and a waiting confirmed one (match.finality). Instant deliveries are leased to their
    message token as they are inserted, so the message that follows the commit is the only one
    that sends them. A disabled
    endpoint that keeps its backlog gets its instant deliveries held (pending, not due, not
    leased: workqueue.backlog), numbered in order, sent when it is enabled.
    """
    leases = NewLeases(now)
    rows = []
    for event in events:
        event_at = event_time(event.block_timestamp)
        for match in matches.get(event.event_id, []):
            for kind in match.kinds:
                if kind == EventKind.INSTANT:
                    # Due now and leased to the message that follows, unless held (disabled).
                    due: dict[str, Any] = {}
                    if match.active:
                        due = {
                            "next_attempt_at": now,
                            "token": leases.token(match.endpoint_id),
                            "lease_expires_at": leases.expires_at,
                        }
                    row = delivery_row(
                        match.endpoint_id,
                        event.event_id,
                        kind,
                        DeliveryStatus.PENDING,
                        now,
                        event_at=event_at,
                        **due,
                    )
                    rows.append(row)
                    continue
                release = release_of(event.block_number, match.confirmations, match.finality)
                rows.append(
                    delivery_row(
                        match.endpoint_id,
                        event.event_id,
                        kind,
                        DeliveryStatus.WAITING,
                        now,
                        event_at=event_at,
                        release_block=release.block,
                        release_tag=release.tag,
                    )
                )
    if not rows:
        return []
    return insert_deliveries(session, rows, leases)


def match_stored(
    session: Session,
    event_ids: Sequence[str],
    token: str,
    now: datetime,
    bounds: TimeRange | None = None,
) -> tuple[int, list[DispatchGroup]]:
    """Everything the matcher does for one message, in the caller's transaction: claim the stored
    events it was leased (within the message's time range, when it has one), mark them matched
    and create their deliveries. Returns the number of events claimed and the deliver tasks to
    enqueue after the commit."""
    events = claim_unmatched(session, event_ids, token, now, bounds)
    live = [e for e in events if not e.removed]  # reorged out before matching: nothing to send
    return len(events), create_deliveries(session, live, find_matches(session, live), now)
