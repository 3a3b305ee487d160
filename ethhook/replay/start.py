"""Before a replay job is created: the chain named, and a range the chain's node has reached."""

from __future__ import annotations

import logging

from ethhook.config import ChainConfig, Settings
from ethhook.exceptions import InputError, TransientError
from ethhook.listen.replay import chain_head
from ethhook.replay.errors import node_failure
from ethhook.replay.jobs import check_replay_range
from ethhook.service.scope import OPERATOR, Scope
from ethhook.service.validation import about, parse_chain

log = logging.getLogger(__name__)


def replay_chain(
    settings: Settings,
    chain: str,
    from_block: int,
    to_block: int,
    names: tuple[str, str] = ("--from-block", "--to-block"),
    scope: Scope = OPERATOR,
) -> int:
    """The id of `chain` (an id or a name) once from_block ≤ to_block ≤ the node's head; InputError
    otherwise, naming the two bounds as the caller calls them (`names`). An application's range
    is checked against its limit before the node is asked; a node failure is TransientError,
    with the node's own words for the operator only."""
    with about("to_block"):
        if to_block < from_block:
            raise InputError(f"{names[1]} {to_block} is before {names[0]} {from_block}")
        check_replay_range(settings, from_block, to_block, scope, names)
    with about("chain"):
        chain_id = parse_chain(chain, settings)
    config = settings.chain_by_id(chain_id) or ChainConfig(settings.chain_name(chain_id), chain_id)
    try:
        head = chain_head(config)
    except TransientError as exc:
        log.warning("replay.head.failed chain=%s error=%s", config.name, exc)
        if scope is None:
            raise  # the operator's own node: its words, with the URL redacted (listen.errors)
        raise TransientError(node_failure(exc)) from None
    if to_block > head:
        error = InputError(f"{names[1]} {to_block} is past the chain's head ({head})")
        error.field = "to_block"
        raise error
    return chain_id
