"""Replays: check what a block range is re-read for, then make its deliveries due again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ethhook.config import ChainConfig, Settings
from ethhook.db.models import utcnow
from ethhook.exceptions import InputError
from ethhook.service.endpoints import get_endpoint
from ethhook.service.scope import Scope
from ethhook.service.validation import parse_chain
from ethhook.types import ChainEvent
from ethhook.workqueue import DispatchGroup


@dataclass(frozen=True)
class ReplayTarget:
    """A validated replay: the chain, the range, and the contracts to ask the node for."""

    chain: ChainConfig
    from_block: int
    to_block: int
    endpoint_id: int | None
    # None: every contract (some endpoint watches them all).
    addresses: list[str] | None


def plan_replay(
    session: Session,
    settings: Settings,
    *,
    chain: str,
    from_block: int,
    to_block: int,
    endpoint_id: int | None,
    scope: Scope,
) -> ReplayTarget:
    """Check a replay request. An application's replay names one of its endpoints; the operator's
    may go to every endpoint that matches."""
    if scope is not None and endpoint_id is None:
        raise InputError("a replay for an application names one of its endpoints")
    if to_block < from_block:
        raise InputError(f"--to-block {to_block} is before --from-block {from_block}")
    chain_id = parse_chain(chain, settings)
    config = settings.chain_by_id(chain_id) or ChainConfig(settings.chain_name(chain_id), chain_id)
    addresses: list[str] | None = None
    if endpoint_id is not None:
        endpoint = get_endpoint(session, endpoint_id, scope=scope)
        if not endpoint.active:
            raise InputError(
                f"endpoint {endpoint.id} is disabled; `ethhook endpoint enable` it first"
            )
        watched = {f.address for f in endpoint.filters if f.chain_id in (None, chain_id)}
        if not watched:
            raise InputError(f"endpoint {endpoint.id} does not watch chain {config.name}")
        addresses = None if None in watched else sorted(a for a in watched if a)
    return ReplayTarget(config, from_block, to_block, endpoint_id, addresses)


def redeliver_range(
    session: Session, target: ReplayTarget, events: Sequence[ChainEvent], head: int
) -> list[DispatchGroup]:
    """The re-read events' deliveries, due now; the caller commits, then enqueues the groups."""
    from ethhook.match.replay import redeliver

    return redeliver(session, events, head, utcnow(), target.endpoint_id)
