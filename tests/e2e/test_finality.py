"""Issue 24's acceptance 1 on a real chain: a `--finality finalized` endpoint gets each event only
once anvil's finalized block (head − 64) reaches it; a `--lifecycle` endpoint gets, for one
event_id, `event.instant` then `event.confirmed`, and after an `anvil_reorg` `event.instant` then
`event.removed` and never a confirmed. One anvil node, listener and worker for the whole story."""

from __future__ import annotations

import time

import pytest

from tests.support.chain import Token, replace_last_blocks
from tests.support.endpoints import add_endpoint
from tests.support.factories import TRANSFER
from tests.support.listener import wait_for_cursor
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]

FINALIZED_DEPTH = 64  # anvil's `finalized` is head − 64 (`--slots-in-an-epoch` 32 × 2)


def tag_block(node, tag: str) -> int:  # noqa: ANN001
    return int(node.rpc("eth_getBlockByNumber", tag, False)["number"], 16)


def stored_finalized(chain_id: int) -> int | None:
    from ethhook.db import session_scope
    from ethhook.db.models import ChainTags

    with session_scope() as session:
        row = session.get(ChainTags, chain_id)
        return None if row is None else row.finalized_number


def in_sequence(requests) -> list[dict]:  # noqa: ANN001
    """The bodies, one per webhook-id, in the endpoint's sequence order (a window of requests
    in flight may arrive in any order; their numbers say the order they were made in)."""
    bodies = {r.webhook_id: r.json for r in requests}
    return sorted(bodies.values(), key=lambda body: body["sequence"])


def by_type(requests) -> dict[str, list[str]]:  # noqa: ANN001
    """Event ids by webhook type, in sequence order."""
    result: dict[str, list[str]] = {}
    for body in in_sequence(requests):
        result.setdefault(body["type"], []).append(body["data"]["event_id"])
    return result


def test_finalized_waits_for_the_tag_and_lifecycle_sends_instant_then_confirmed_or_removed(
    start_anvil, start_listener, receiver
):
    # Given a token, a finalized endpoint and a lifecycle endpoint with 3 confirmations
    node = start_anvil(chain_id=1)
    token = Token(node)
    watch = {"contracts": [token.address], "events": [TRANSFER]}
    _, final_secret = add_endpoint(receiver.url("/final"), finality="finalized", **watch)
    _, life_secret = add_endpoint(receiver.url("/life"), lifecycle=True, confirmations=3, **watch)
    receiver.secrets.update({"/final": final_secret, "/life": life_secret})
    listener = start_listener({"ETHEREUM_WS": node.ws_url, "ETHEREUM_HTTP": node.http_url})
    listener.wait_started(1)
    wait_until(lambda: stored_finalized(1) is not None, 30, 0.1, "the stored finalized block")

    # When one block with two Transfers is mined
    token.emit_transfers(2, 100)
    block = node.block_number()
    assert tag_block(node, "finalized") < block
    # Then the lifecycle endpoint hears of both at once…
    wait_until(lambda: len(receiver.on("/life")) >= 2, 30, 0.1, "2 instant webhooks")
    instant = by_type(receiver.on("/life"))["event.instant"]
    assert len(instant) == 2
    # …and, 3 blocks later, gets them confirmed: same event ids, their own webhook-ids, and
    # numbers after the instant ones.
    node.mine(3)
    wait_until(lambda: len(receiver.on("/life")) >= 4, 30, 0.1, "2 confirmed webhooks")
    life = by_type(receiver.on("/life"))
    assert life == {"event.instant": instant, "event.confirmed": instant}
    assert [body["sequence"] for body in in_sequence(receiver.on("/life"))] == [1, 2, 3, 4]
    assert len({r.webhook_id for r in receiver.on("/life")}) == 4

    # While the finalized block is below the event's block, the finalized endpoint gets nothing,
    # even one block short of it, stored by the listener and seen by beat.
    assert receiver.on("/final") == []
    node.mine(block + FINALIZED_DEPTH - 1 - node.block_number())
    assert tag_block(node, "finalized") == block - 1
    wait_until(lambda: stored_finalized(1) == block - 1, 30, 0.1, "finalized = block − 1")
    time.sleep(3)  # beat releases every second: a release that should not happen would, now
    assert receiver.on("/final") == []
    # When it reaches the block, both arrive, confirmed
    node.mine(1)
    assert tag_block(node, "finalized") == block
    wait_until(lambda: len(receiver.on("/final")) >= 2, 30, 0.1, "2 finalized webhooks")
    assert sorted(by_type(receiver.on("/final"))["event.confirmed"]) == sorted(instant)
    assert all(r.verified for r in receiver.on("/final") + receiver.on("/life"))

    # When a block with one Transfer is reorged out (replaced by one with three others)
    before = len(receiver.on("/life"))
    token.emit_transfers(1, 900)
    orphaned_block = node.block_number()
    wait_until(lambda: len(receiver.on("/life")) >= before + 1, 30, 0.1, "the instant webhook")
    (orphan,) = by_type(receiver.on("/life")[before:])["event.instant"]
    wait_for_cursor(1, orphaned_block)
    replace_last_blocks(node, token, depth=1, txs=1, base=50_000)
    time.sleep(1)
    node.mine(FINALIZED_DEPTH + 1)  # past the lifecycle's 3 and the finalized tag
    # Then the lifecycle endpoint hears it removed, and gets the 3 new ones instant and confirmed
    wait_until(
        lambda: len(receiver.on("/life")) >= before + 1 + 1 + 3 + 3, 60, 0.2, "the reorg's webhooks"
    )
    wait_until(lambda: len(receiver.on("/final")) >= 2 + 3, 60, 0.2, "3 new finalized webhooks")
    time.sleep(3)  # a confirmed for the orphan, or a duplicate, would arrive now
    after = by_type(receiver.on("/life")[before:])
    new = after["event.instant"][1:]
    assert len(new) == 3 and orphan not in new
    assert after["event.instant"][0] == orphan and after["event.removed"] == [orphan]
    assert sorted(after["event.confirmed"]) == sorted(new)
    assert set(after) == {"event.instant", "event.removed", "event.confirmed"}
    removed = next(r.json for r in receiver.on("/life") if r.json["type"] == "event.removed")
    assert removed["data"]["removed"] is True
    # …in sequence, no gap: the removal comes after its instant, and nothing about the orphan
    # follows it.
    numbered = in_sequence(receiver.on("/life"))
    assert [body["sequence"] for body in numbered] == list(range(1, len(numbered) + 1))
    orphan_types = [body["type"] for body in numbered if body["data"]["event_id"] == orphan]
    assert orphan_types == ["event.instant", "event.removed"]
    # The finalized endpoint never heard of the orphan: only the final canonical events.
    final = by_type(receiver.on("/final"))
    assert set(final) == {"event.confirmed"}
    assert sorted(final["event.confirmed"]) == sorted(instant + new)
    assert len(receiver.on("/final")) == 5
    assert listener.terminate() == 0
