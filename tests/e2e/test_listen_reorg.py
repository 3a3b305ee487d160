"""Acceptance 2: a reorg of depth 3 (anvil_reorg with replacement transactions) is found by parent
hash: instant endpoints hear `event.removed` for every orphaned event and get the new canonical ones;
an endpoint with 5 confirmations gets exactly the final canonical events."""

from __future__ import annotations

import time

import pytest

from ethhook.types import event_id_for
from tests.support.chain import Token, replace_last_blocks
from tests.support.endpoints import add_endpoint
from tests.support.listener import wait_for_cursor
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]


def canonical_event_ids(node, token, from_block: int) -> set[str]:
    logs = node.rpc(
        "eth_getLogs", {"fromBlock": hex(from_block), "toBlock": "latest", "address": token.address}
    )
    return {event_id_for(1, log["blockHash"], int(log["logIndex"], 16)) for log in logs}


def test_reorg_depth_3_sends_removed_to_instant_and_only_canonical_to_confirmed(
    start_anvil, start_listener, receiver
):
    # Given a 0-confirmation and a 5-confirmation endpoint on a token, and a listener following
    node = start_anvil(chain_id=1)
    token = Token(node)
    add_endpoint(receiver.url("/instant"), contracts=[token.address], confirmations=0)
    add_endpoint(receiver.url("/confirmed"), contracts=[token.address], confirmations=5)
    listener = start_listener({"ETHEREUM_WS": node.ws_url, "ETHEREUM_HTTP": node.http_url})
    listener.wait_started(1)
    first = node.block_number() + 1

    # ... and ten blocks of 20 Transfers each, all delivered instantly
    for k in range(10):
        token.emit_transfers(20, 1000 + 20 * k)
    head = node.block_number()
    assert head == first + 9
    wait_until(lambda: len(receiver.on("/instant")) >= 200, 60, 0.1, "200 instant webhooks")
    wait_for_cursor(1, head)
    before = canonical_event_ids(node, token, first)
    orphan_blocks = {node.block(n)["hash"] for n in range(head - 2, head + 1)}

    # When the last 3 blocks are replaced by blocks with two other transactions (3 events each)
    replace_last_blocks(node, token, depth=3, txs=2, base=50_000)
    assert node.block_number() == head
    assert {node.block(n)["hash"] for n in range(head - 2, head + 1)}.isdisjoint(orphan_blocks)
    # ... and the chain grows until the new blocks have their 5 confirmations
    time.sleep(1)
    node.mine(6)
    after = canonical_event_ids(node, token, first)
    orphaned = before - after
    new = after - before
    assert len(orphaned) == 60 and len(new) == 6

    # Then /instant got every original event, `event.removed` for each orphaned one, and the new
    def kinds(path: str) -> dict[str, set[str]]:
        result: dict[str, set[str]] = {}
        for r in receiver.on(path):
            result.setdefault(r.json["type"], set()).add(r.json["data"]["event_id"])
        return result

    wait_until(
        lambda: (
            len(receiver.on("/instant")) >= 200 + 60 + 6
            and len(receiver.on("/confirmed")) >= len(after)
        ),
        60,
        0.2,
        "all webhooks",
    )
    time.sleep(3)  # anything extra (an orphaned confirmation, a duplicate) would arrive now
    instant = kinds("/instant")
    assert instant == {"event.instant": before | new, "event.removed": orphaned}
    assert len(receiver.on("/instant")) == 200 + 60 + 6
    removed = [r.json for r in receiver.on("/instant") if r.json["type"] == "event.removed"]
    assert all(body["data"]["removed"] is True for body in removed)
    # ... and /confirmed exactly the final canonical events, never an orphaned one
    assert kinds("/confirmed") == {"event.confirmed": after}
    assert len(receiver.on("/confirmed")) == len(after)
    assert "listen.reorg.detected chain=ethereum depth=3" in listener.log()
    assert listener.terminate() == 0


def test_reorg_while_the_listener_is_stopped_is_found_when_it_starts_again(
    start_anvil, start_listener, receiver
):
    # Given an instant endpoint that received 5 blocks of 10 Transfers, and a stopped listener
    node = start_anvil(chain_id=1)
    token = Token(node)
    add_endpoint(receiver.url("/instant"), contracts=[token.address])
    chains = {"ETHEREUM_WS": node.ws_url, "ETHEREUM_HTTP": node.http_url}
    listener = start_listener(chains)
    listener.wait_started(1)
    first = node.block_number() + 1
    for k in range(5):
        token.emit_transfers(10, 100 + 10 * k)
    wait_until(lambda: len(receiver.on("/instant")) >= 50, 30, 0.1, "50 webhooks")
    wait_for_cursor(1, node.block_number())
    assert listener.terminate() == 0
    before = canonical_event_ids(node, token, first)

    # When the last 2 blocks are replaced while it is down, and it starts again
    replace_last_blocks(node, token, depth=2, txs=1, base=9_000)
    after = canonical_event_ids(node, token, first)
    orphaned, new = before - after, after - before
    assert len(orphaned) == 20 and len(new) == 3
    restarted = start_listener(chains)

    # Then the endpoint hears `event.removed` for the 20 orphaned events and gets the 3 new ones
    wait_until(lambda: len(receiver.on("/instant")) >= 50 + 20 + 3, 30, 0.1, "73 webhooks")
    time.sleep(2)
    kinds: dict[str, set[str]] = {}
    for r in receiver.on("/instant"):
        kinds.setdefault(r.json["type"], set()).add(r.json["data"]["event_id"])
    assert kinds == {"event.instant": before | new, "event.removed": orphaned}
    assert len(receiver.on("/instant")) == 73
    assert "listen.reorg.detected chain=ethereum depth=2" in restarted.log()
    assert restarted.terminate() == 0
