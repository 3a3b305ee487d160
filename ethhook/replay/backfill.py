"""`endpoint add --from-block N`: the endpoint, and a replay job for it alone from N to the
listener's cursor, in one transaction; the job's deliveries are marked `backfill` and the endpoint
turns live where the job ends (replay.seam)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ethhook.config import Settings
from ethhook.db.models import ChainCursor, Origin
from ethhook.exceptions import InputError
from ethhook.replay.jobs import Replay, check_replay_range, create_replay
from ethhook.service import public
from ethhook.service.endpoints import EndpointWithSecret, create_endpoint
from ethhook.service.scope import Scope
from ethhook.service.validation import EndpointSpec, about
from ethhook.workqueue import ReplayDispatch


@dataclass(frozen=True)
class CreatedEndpoint:
    """An endpoint just made, and its backfill job (enqueue `dispatch` after the commit)."""

    created: EndpointWithSecret
    backfill: Replay | None = None
    dispatch: ReplayDispatch | None = None

    def as_public(self) -> public.EndpointWithSecret:
        made = self.created.as_public()
        if self.backfill is None:
            return made
        return made.model_copy(update={"backfill_replay_id": self.backfill.id})


def add_endpoint(
    session: Session,
    settings: Settings,
    spec: EndpointSpec,
    now: datetime,
    *,
    scope: Scope,
    application_id: int | None = None,
) -> CreatedEndpoint:
    """Create the endpoint; with `spec.from_block`, also its backfill job, from that block to the
    block the listener has read on its one chain (refused before anything is made when the
    listener has not read that chain, or is not there yet)."""
    if spec.from_block is None:
        return CreatedEndpoint(
            create_endpoint(session, spec, scope=scope, application_id=application_id)
        )
    (chain_id,) = spec.chain_ids
    chain = settings.chain_name(chain_id)
    cursor = session.scalar(
        select(ChainCursor.block_number).where(ChainCursor.chain_id == chain_id)
    )
    with about("from_block"):
        if cursor is None:
            raise InputError(
                f"the listener has not read {chain} yet, so there is no head to backfill to: "
                "start `ethhook listen`, or leave out --from-block"
            )
        if spec.from_block > cursor:
            raise InputError(
                f"--from-block {spec.from_block} is past the block the listener has read on "
                f"{chain} ({cursor}); leave out --from-block to start live"
            )
        check_replay_range(settings, spec.from_block, cursor, scope, ("--from-block", "the head"))
    created = create_endpoint(session, spec, scope=scope, application_id=application_id)
    job, dispatch = create_replay(
        session,
        settings,
        chain_id,
        spec.from_block,
        cursor,
        created.endpoint.id,
        now,
        scope=scope,
        origin=Origin.BACKFILL,
    )
    return CreatedEndpoint(created, job, dispatch)
