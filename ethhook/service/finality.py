"""Whether the chains an endpoint watches can confirm by the block tag it asks for."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ethhook.db.models import ChainTags, Finality
from ethhook.exceptions import InputError


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
