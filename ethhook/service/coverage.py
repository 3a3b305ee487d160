"""`endpoint coverage`: per chain, the block range scanned for an endpoint since it was made (or
since its --from-block), and where the part with its confirmations ends."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ethhook.config import Settings
from ethhook.db.models import ChainCursor, ChainTags, Finality, Origin, ReplayJob, ReplayState
from ethhook.service import public
from ethhook.service.rows import get_endpoint
from ethhook.service.scope import Scope


def endpoint_coverage(
    session: Session, endpoint_id: int, settings: Settings, *, scope: Scope
) -> public.Coverage:
    """Per chain it watches (every chain the listener reads, when it names none): from its start
    block to the listener's cursor, or, while its backfill runs, to the backfill's last block
    done; confirmed up to `confirmations` blocks below that (a safe or finalized endpoint: up
    to the chain's stored tag, none while it is not known)."""
    endpoint = get_endpoint(session, endpoint_id, scope=scope)
    cursors = dict(session.execute(select(ChainCursor.chain_id, ChainCursor.block_number)).all())
    starts = {int(chain): block for chain, block in (endpoint.start_blocks or {}).items()}
    chain_ids = sorted(set(endpoint.chain_ids or cursors) | set(starts))
    backfill = None
    if endpoint.backfilling:
        backfill = session.scalars(
            select(ReplayJob).where(
                ReplayJob.endpoint_id == endpoint.id,
                ReplayJob.origin == Origin.BACKFILL,
                ReplayJob.state.in_(ReplayState.ACTIVE),
            )
        ).first()
    tags = _tag_blocks(session, endpoint.finality)
    chains = []
    for chain_id in chain_ids:
        start = starts.get(chain_id)
        scanned = cursors.get(chain_id)
        filling = backfill is not None and backfill.chain_id == chain_id
        if filling and backfill is not None:
            scanned = backfill.next_block - 1
        if scanned is not None and start is not None and scanned < start:
            scanned = None  # nothing scanned for it yet
        confirmed = None if scanned is None else scanned - endpoint.confirmations
        if confirmed is not None and endpoint.finality != Finality.LATEST:
            tag = tags.get(chain_id)
            confirmed = None if tag is None else min(tag, confirmed)
        if confirmed is not None and start is not None and confirmed < start:
            confirmed = None
        chains.append(
            public.ChainCoverage(
                chain_id=chain_id,
                chain=settings.chain_name(chain_id),
                from_block=start,
                scanned_to=scanned,
                confirmed_to=confirmed,
                backfilling=filling,
            )
        )
    return public.Coverage(
        endpoint_id=endpoint.id,
        active=endpoint.active,
        confirmations=endpoint.confirmations,
        chains=chains,
    )


def _tag_blocks(session: Session, finality: str) -> dict[int, int | None]:
    """The stored `safe` or `finalized` block per chain (none for `latest`)."""
    if finality == Finality.LATEST:
        return {}
    column = ChainTags.safe_number if finality == Finality.SAFE else ChainTags.finalized_number
    return {int(c): b for c, b in session.execute(select(ChainTags.chain_id, column)).all()}
