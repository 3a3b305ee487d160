"""An endpoint's finality: a value EthHook knows, not beside confirmations, and a block tag the
nodes of the chains it watches answer."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ethhook.db.models import ChainTags, Finality
from ethhook.exceptions import InputError


def check_finality(finality: str) -> str:
    if finality not in Finality.ALL:
        shown = repr(finality[:60]) + ("…" if len(finality) > 60 else "")
        raise InputError(f"invalid --finality {shown}: expected latest, safe or finalized")
    return finality


def check_finality_with(finality: str, confirmations: int) -> None:
    """Confirmations count blocks above the cursor: they mean nothing beside a chain tag."""
    if finality != Finality.LATEST and confirmations:
        raise InputError(
            f"--finality {finality} and --confirmations {confirmations} do not go together: "
            "a safe or finalized endpoint is confirmed by its chain's tag, confirmations apply "
            "to --finality latest only (give --confirmations 0)"
        )


def check_chain_tags(session: Session, finality: str, chain_ids: Sequence[int]) -> None:
    """Refuse a safe or finalized endpoint on a chain whose node the listener found lacking the
    tags (`chain_tags.supported` false; an endpoint for every chain: any such chain). A chain the
    listener has not asked yet is accepted: its deliveries wait until the tag is known."""
    if finality == Finality.LATEST:
        return
    query = select(ChainTags.chain_id).where(ChainTags.supported.is_(False))
    if chain_ids:
        query = query.where(ChainTags.chain_id.in_(sorted(chain_ids)))
    lacking = session.scalars(query.order_by(ChainTags.chain_id)).first()
    if lacking is not None:
        raise InputError(
            f"--finality {finality}: the node of chain {lacking} does not answer the "
            f'"{finality}" block tag (the listener asked it); use --finality latest with '
            "--confirmations N there"
        )
