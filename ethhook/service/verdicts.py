"""What explain says of one log and one endpoint: matched or not, and why (service.explain
gathers the facts; this decides, without a database or a node).

The match checks come first, the matcher's own (`match.explain.first_miss`: chain, contract,
event, `--where`); then the endpoint's state (disabled, created after the block); then, for a
log its filters accept with no delivery, what kept it from the matcher. A matched log's reason
is what holds its deliveries back, if anything (disabled, finality, confirmations, an ordered
endpoint's head, failed attempts and the next try, the retry schedule used up).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ethhook.db.models import DeliveryStatus, EventKind
from ethhook.db.partition_plan import event_time
from ethhook.match.explain import first_miss
from ethhook.match.service import FilterRow
from ethhook.service import public
from ethhook.types import ChainEvent
from ethhook.workqueue import Head


@dataclass(frozen=True)
class LogFacts:
    """A log of the transaction, and what the database says of it."""

    event: ChainEvent
    stored: bool
    matched_at: datetime | None  # when the matcher took it; None: not yet, or not stored


@dataclass(frozen=True)
class EndpointFacts:
    """What the checks read of an endpoint (read before the node is asked)."""

    id: int
    active: bool
    disabled_reason: str | None
    confirmations: int
    created_at: datetime
    signatures: list[str]
    rows: list[FilterRow]  # its filter rows as the matcher's query returns them
    finality: str = "latest"  # `safe`/`finalized`: a confirmed delivery waits for that tag
    discard: bool = False  # disabled with --discard: its backlog is dropped, not kept
    ordered: str | None = None  # `--ordered`: pause or skip-dead
    # An ordered endpoint's head (the delivery it sends next, or the dead-lettered one holding
    # a pause endpoint), read when the log has a pending delivery to it.
    head: Head | None = None


@dataclass(frozen=True)
class ChainFacts:
    """What the explanation needs to know of the chain."""

    chain_id: int
    name: str
    cursor: int | None  # the last block the listener read (verified), None before its first
    head: int | None  # the block confirmations are counted to


def verdict(
    item: LogFacts,
    endpoint: EndpointFacts,
    deliveries: list[public.ExplainDelivery],
    chain: ChainFacts,
    chain_name: Callable[[int], str],
    next_at: Mapping[int, datetime] | None = None,
) -> public.ExplainEndpoint:
    """The endpoint's entry for the log: `matched` (it has a delivery) and the reason.
    `next_at`: when a pending delivery's next attempt is due, for those due later than now."""
    if deliveries:
        reason = held_back(endpoint, deliveries, item, chain, next_at or {})
        return public.ExplainEndpoint(
            endpoint_id=endpoint.id, matched=True, reason=reason, deliveries=deliveries
        )
    reason = first_miss(item.event, endpoint.rows, endpoint.signatures, chain_name) or state_miss(
        item, endpoint, chain
    )
    return public.ExplainEndpoint(
        endpoint_id=endpoint.id, matched=False, reason=reason, deliveries=[]
    )


def held_back(
    endpoint: EndpointFacts,
    deliveries: list[public.ExplainDelivery],
    item: LogFacts,
    chain: ChainFacts,
    next_at: Mapping[int, datetime],
) -> str | None:
    """What holds a matched event's deliveries back, if anything."""
    unsent = [d for d in deliveries if d.status in DeliveryStatus.UNSENT]
    if unsent and not endpoint.active:
        return disabled(endpoint)
    if any(d.status == DeliveryStatus.WAITING and d.kind != EventKind.CONFIRMED for d in unsent):
        return (
            "ordered: held until the matcher has every earlier event of the chain, so that its "
            "sequence number follows the chain's order (an earlier batch of blocks is being "
            "matched)"
        )
    if any(d.status == DeliveryStatus.WAITING for d in unsent) and endpoint.finality != "latest":
        return (
            f"finality: waiting until the chain's {endpoint.finality} block reaches block "
            f"{item.event.block_number} (the endpoint has --finality {endpoint.finality})"
        )
    if any(d.status == DeliveryStatus.DISCARDED for d in deliveries):
        return (
            "discarded: `endpoint disable --discard` dropped the delivery before it was sent "
            "(`ethhook delivery retry` sends it again)"
        )
    if any(d.status == DeliveryStatus.WAITING for d in unsent):
        wanted = item.event.block_number + endpoint.confirmations
        head = chain.head if chain.head is not None else item.event.block_number
        left = max(wanted - head, 0)
        return (
            f"confirmations: {left} more block{'s' if left != 1 else ''} to go (the endpoint "
            f"waits for {endpoint.confirmations}: block {wanted}; the chain is at block {head})"
        )
    first = endpoint.head
    if first is not None and any(
        d.status == DeliveryStatus.PENDING and d.id != first.id for d in unsent
    ):
        return behind_head(endpoint.id, first)
    retried = [d for d in unsent if d.status == DeliveryStatus.PENDING and d.attempts]
    if retried:
        return retrying(retried[0], next_at.get(retried[0].id))
    dead = [d for d in deliveries if d.status == DeliveryStatus.FAILED]
    if dead:
        return dead_lettered(dead[0])
    return None


def retrying(delivery: public.ExplainDelivery, next_at: datetime | None) -> str:
    """A pending delivery whose attempts failed: how many, the last answer, the next try."""
    when = f"the next at {_iso(next_at)}" if next_at is not None else "the next is due now"
    return f"retrying: {_attempts(len(delivery.attempts))} failed {_last(delivery)}; {when}"


def dead_lettered(delivery: public.ExplainDelivery) -> str:
    """A delivery whose retry schedule is used up."""
    again = f"`ethhook delivery retry {delivery.id}` sends it again"
    if not delivery.attempts:
        return f"failed: dead-lettered; {again}"
    return f"failed: dead-lettered after {_attempts(len(delivery.attempts))} {_last(delivery)}; {again}"


def _attempts(n: int) -> str:
    """`1 attempt`, `3 attempts`."""
    return f"{n} attempt{'s' if n != 1 else ''}"


def _last(delivery: public.ExplainDelivery) -> str:
    """`(the last: HTTP 503)`: the answer to a delivery's latest attempt, or its error."""
    attempt = delivery.attempts[-1]
    if attempt.status_code is not None:
        return f"(the last: HTTP {attempt.status_code})"
    return f"(the last: {(attempt.error or 'no answer')[:80]})"


def behind_head(endpoint_id: int, head: Head) -> str:
    """A pending delivery of an ordered endpoint that waits for the endpoint's head (whose
    `next_attempt_at` is None once its next try is due)."""
    named = f"delivery {head.id} (sequence {head.sequence})"
    if head.status == DeliveryStatus.FAILED:
        return (
            f"ordered: {named} is dead-lettered and the deliveries after it wait: retry it "
            f"(`ethhook delivery retry {head.id}`) or skip past it (`ethhook endpoint update "
            f"{endpoint_id} --ordered=skip-dead`)"
        )
    said = f"ordered: waits for {named}, sent first: the endpoint's webhooks go one at a time"
    if not head.attempts:
        return said
    when = "the next is due now"
    if head.next_attempt_at is not None:
        when = f"next at {_iso(head.next_attempt_at)}"
    return f"{said}; it failed {_attempts(head.attempts)}, {when}"


def disabled(endpoint: EndpointFacts) -> str:
    """A disabled endpoint, and which rule applies to what matches it meanwhile."""
    why = f" ({endpoint.disabled_reason})" if endpoint.disabled_reason else ""
    if endpoint.discard:
        return (
            f"disabled: the endpoint is disabled with --discard{why}; events that match it are "
            f"discarded until `ethhook endpoint enable {endpoint.id}`"
        )
    return (
        f"disabled: the endpoint is disabled{why}; its deliveries are kept as backlog (within "
        f"retention) and sent by `ethhook endpoint enable {endpoint.id}`"
    )


def state_miss(item: LogFacts, endpoint: EndpointFacts, chain: ChainFacts) -> str:
    """Why an event the endpoint's filters accept has no delivery for it."""
    event = item.event
    block_time = event_time(event.block_timestamp)
    if not endpoint.active:
        return disabled(endpoint)
    # Block times are whole seconds: an endpoint made within the block's second came before it.
    if endpoint.created_at >= block_time + timedelta(seconds=1):
        return (
            f"created after the block: the endpoint was created at {_iso(endpoint.created_at)}, "
            f"block {event.block_number} at {_iso(block_time)} (`ethhook replay` sends it)"
        )
    if event.removed:
        return "removed: a reorg removed the log before it was sent"
    if not item.stored:
        if chain.cursor is None:
            return f"not stored: the listener has not read {chain.name} yet"
        if chain.cursor < event.block_number:
            return (
                f"not stored: the listener has not read block {event.block_number} yet "
                f"(it is at block {chain.cursor})"
            )
        return (
            f"not stored: no endpoint watched the log's contract when the listener read block "
            f"{event.block_number} (`ethhook replay` sends it)"
        )
    if item.matched_at is None:
        return "not matched yet: the event waits for the matcher"
    return (
        f"no delivery: when the event was matched at {_iso(item.matched_at)} the endpoint was "
        f"disabled or its filters did not accept it (`ethhook replay` sends it)"
    )


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
