"""What an endpoint is matched by: its filter rows (the cross product of its chains, contracts
and events), its --where conditions and their topic keys, and the block each chain starts from."""

from __future__ import annotations

import itertools

from sqlalchemy import select
from sqlalchemy.orm import Session

from ethhook.abi import parse_event_signature
from ethhook.conditions import compiled, topic_key
from ethhook.db.models import ChainCursor, Endpoint, EndpointFilter, EndpointTopicKey


def filter_rows(
    chain_ids: tuple[int, ...],
    contracts: tuple[str, ...],
    topics: tuple[str, ...],
    *,
    keyed: bool = False,
) -> list[EndpointFilter]:
    """The cross product of the chain, contract and topic lists; an empty list matches anything."""
    return [
        EndpointFilter(chain_id=chain_id, address=address, topic0=topic0, keyed=keyed)
        for chain_id, address, topic0 in itertools.product(
            chain_ids or (None,), contracts or (None,), topics or (None,)
        )
    ]


def set_filters(
    endpoint: Endpoint,
    chain_ids: tuple[int, ...],
    contracts: tuple[str, ...],
    topics: tuple[str, ...],
    signatures: tuple[str, ...],
    where: tuple[str, ...],
) -> None:
    """Replace the endpoint's filter rows, conditions and topic keys (`where` already checked
    against its one event by validation.check_where)."""
    key = None
    if where:
        signature = parse_event_signature(signatures[0])
        key = topic_key(compiled(signature.text, where), signature)
    endpoint.event_signatures = list(signatures)
    endpoint.conditions = list(where) or None
    endpoint.filters = filter_rows(chain_ids, contracts, topics, keyed=key is not None)
    endpoint.topic_keys = (
        [EndpointTopicKey(position=key[0], value=value) for value in key[1]] if key else []
    )


def start_blocks(
    session: Session, chain_ids: tuple[int, ...], from_block: int | None
) -> dict[str, int]:
    """Per chain the listener has read (of `chain_ids`, or every one): the first block an
    endpoint made now is matched from, its `from_block` when it has one (one chain)."""
    if from_block is not None:
        return {str(chain_ids[0]): from_block}
    query = select(ChainCursor.chain_id, ChainCursor.block_number)
    if chain_ids:
        query = query.where(ChainCursor.chain_id.in_(chain_ids))
    return {str(chain_id): block + 1 for chain_id, block in session.execute(query)}
