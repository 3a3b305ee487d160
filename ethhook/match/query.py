"""The batched endpoint query of the match stage: every filter row that may take a batch's events,
in ONE statement (find_matches in match.service pairs them with the events)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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

from ethhook.db.arrays import array_literal
from ethhook.db.dialect import array
from ethhook.db.models import (
    Endpoint,
    EndpointFilter,
    EndpointTopicKey,
)
from ethhook.match.finality import LIFECYCLE_SUFFIX, ORDERED_SUFFIX
from ethhook.types import ChainEvent


class Batch:
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
    batch = Batch(events, arrays)
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
    sends = [Endpoint.id == f.endpoint_id, Endpoint.takes_events()]
    if live:
        sends.append(Endpoint.backfilling.is_(False))
    confirmations_of = select(Endpoint.confirmations).where(*sends).scalar_subquery()
    conditions_of = select(Endpoint.conditions).where(Endpoint.id == f.endpoint_id)
    signatures_of = select(Endpoint.event_signatures).where(
        Endpoint.id == f.endpoint_id, Endpoint.conditions.is_not(None)
    )
    # Its finality, lifecycle and ordering as one text (match.finality.parse_mode): one more
    # probe. (Literals, not bound values: the PostgreSQL statement is compiled once and sent as
    # it is.)
    nothing: Any = literal_column("''")
    lifecycle = literal_column(f"'{LIFECYCLE_SUFFIX}'", String)
    ordered = literal_column(f"'{ORDERED_SUFFIX}'", String)
    mode = (
        Endpoint.finality
        + case((Endpoint.lifecycle, lifecycle), else_=nothing)
        + case((Endpoint.ordered.is_not(None), ordered), else_=nothing)
    )
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
    batch: Batch, columns: tuple[Any, ...], settings: tuple[Any, ...], where: list[Any]
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
