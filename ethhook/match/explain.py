"""Why an event did not match an endpoint: the matcher's checks, in its order, one at a time.

`pair_with_filters` (match/service.py) answers "which endpoints?" for a whole batch, as fast as it
can; this answers "which check failed?" for one event and one endpoint, over the same filter rows
(`FilterRow`), the same decoding (`event_args`) and the same compiled conditions (`compiled`,
`Condition.holds`), so that the two cannot disagree (tests/unit/match/test_explain.py pairs them).
The topic key is not checked apart: it is the endpoint's first indexed `==`/`in` condition, which
is checked with the others, and naming the condition says more than naming the key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ethhook.abi import EventParam, checksum
from ethhook.conditions import compiled, event_signature
from ethhook.match.service import FilterRow, event_args
from ethhook.types import ChainEvent


def first_miss(
    event: ChainEvent,
    rows: Sequence[FilterRow],
    signatures: Sequence[str],
    chain_name: Callable[[int], str],
) -> str | None:
    """The first of the matcher's checks the event fails for the endpoint whose filter rows are
    `rows`, in words that name it (`chain: …`, `contract: …`, `event: …`, `where: …`); None when
    its filters accept the event. `signatures` are the endpoint's event signatures (to name the
    events it watches); the endpoint's state (disabled, created after the block) is the
    caller's to check."""
    on_chain = [r for r in rows if r.chain_id in (None, event.chain_id)]
    if not on_chain:
        watched = ", ".join(_chain(c, chain_name) for c in _distinct(r.chain_id for r in rows))
        return f"chain: the log is on {_chain(event.chain_id, chain_name)}; the endpoint watches {watched}"
    on_contract = [r for r in on_chain if r.address in (None, event.address)]
    if not on_contract:
        watched = ", ".join(checksum(a) for a in _distinct(r.address for r in on_chain))
        return (
            f"contract: the log's contract is {checksum(event.address)}; "
            f"the endpoint watches {watched}"
        )
    on_event = [r for r in on_contract if r.topic0 in (None, event.topic0)]
    if not on_event:
        names = {event_signature(s).topic0: event_signature(s).canonical for s in signatures}
        watched = ", ".join(names.get(t, t) for t in _distinct(r.topic0 for r in on_contract))
        seen = event.topic0 or "none (an anonymous log)"
        return f"event: the log's topic0 is {seen}; the endpoint watches {watched}"
    return _where_miss(event, on_event[0])


def _where_miss(event: ChainEvent, row: FilterRow) -> str | None:
    """The first --where condition that does not hold, with the value the event carries."""
    if not row.conditions:
        return None
    if not row.signatures:  # conditions without their event: the matcher never matches it
        return "where: the endpoint has conditions but no event signature to decode the log with"
    signature = row.signatures[0]
    args = event_args(event, signature)
    if args is None:
        return f"where: the log does not decode as {event_signature(signature).canonical}"
    for condition in compiled(signature, tuple(row.conditions)):
        if not condition.holds(args):
            value = _shown(condition.param, args[condition.param.name])
            return f"where: {condition.text} is false ({condition.param.name} = {value})"
    return None


def _shown(param: EventParam, value: Any) -> str:
    """A canonical argument as a user would write it in a condition."""
    if param.type == "address" and isinstance(value, str):
        return checksum(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and param.type == "string" and not param.indexed:
        return f'"{value}"'
    return str(value)


def _distinct(values: Any) -> list[Any]:
    return sorted({v for v in values if v is not None})


def _chain(chain_id: int, chain_name: Callable[[int], str]) -> str:
    return f"{chain_name(chain_id)} ({chain_id})"
