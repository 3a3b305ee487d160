"""Acceptance 1 and 5: thousands of Transfer events from a real anvil node reach exactly the
matching endpoints, once each, decoded; over WebSocket heads and over HTTP polling alone."""

from __future__ import annotations

import time

import pytest

from ethhook.demo.devchain import events_in
from tests.support.chain import Token, expected_transfer
from tests.support.endpoints import add_endpoint
from tests.support.factories import TRANSFER
from tests.support.listener import wait_for_cursor
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]


def stream_transfers(token, txs: int, per_tx: int, base: int) -> dict[tuple[str, str], int]:
    """Send `txs` transactions of `per_tx` Transfer events; returns {(to, value): count}."""
    expected: dict[tuple[str, str], int] = {}
    for k in range(txs):
        start = base + k * per_tx
        token.emit_transfers(per_tx, start, wait=False)
        for i in range(per_tx):
            args = expected_transfer(start, i)
            expected[(args["to"], args["value"])] = 1
    # Every transaction mined, and the chain holds exactly the events expected here.
    assert events_in(token.node.confirm_sent()) == len(expected)
    return expected


def received_args(requests) -> list[tuple[str, str]]:
    return [
        (
            r.json["data"]["decoded"]["args"]["to"].lower(),
            r.json["data"]["decoded"]["args"]["value"],
        )
        for r in requests
    ]


@pytest.mark.parametrize("transport", ["websocket", "http-only"])
def test_2000_transfers_reach_the_matching_endpoint_exactly_once(
    transport, start_anvil, start_listener, receiver
):
    # Given a node with two tokens and endpoints for token A's Transfers, token B, and chain 10
    node = start_anvil(chain_id=1)
    token_a = Token(node)
    token_b = Token(node)
    _, secret = add_endpoint(
        receiver.url("/a"), chains=["1"], contracts=[token_a.address], events=[TRANSFER]
    )
    receiver.secrets["/a"] = secret
    add_endpoint(receiver.url("/b"), contracts=[token_b.address], events=[TRANSFER])
    add_endpoint(receiver.url("/optimism"), chains=["10"])
    chains = {"ETHEREUM_HTTP": node.http_url}
    if transport == "websocket":
        chains["ETHEREUM_WS"] = node.ws_url
    listener = start_listener(chains)
    listener.wait_started(1)

    # When 100 transactions emit 2,000 Transfers from A, and 5 from B
    started = time.monotonic()
    expected = stream_transfers(token_a, txs=100, per_tx=20, base=10_000)
    token_b.emit_transfers(5, 1)
    assert len(expected) == 2000

    wait_for_cursor(1, node.block_number())
    published = time.monotonic() - started

    # Then /a receives each of A's events once, signed and decoded; /b only B's; /optimism nothing
    wait_until(
        lambda: len(receiver.on("/a")) >= 2000 and len(receiver.on("/b")) >= 5,
        120,
        0.2,
        "2000 webhooks at /a and 5 at /b",
    )
    elapsed = time.monotonic() - started
    time.sleep(2)  # a duplicate would arrive now
    got = receiver.on("/a")
    assert len(got) == 2000
    assert sorted(received_args(got)) == sorted(expected)
    assert all(r.verified for r in got)
    assert len({r.webhook_id for r in got}) == 2000
    body = got[0].json
    assert body["type"] == "event.instant"
    assert body["data"]["chain_id"] == 1 and body["data"]["chain"] == "ethereum"
    assert body["data"]["address"].lower() == token_a.address
    assert body["data"]["decoded"]["event"] == "Transfer"
    block = node.block(body["data"]["block_number"])
    assert body["data"]["block_hash"] == block["hash"]
    assert body["data"]["block_timestamp"] == int(block["timestamp"], 16)
    assert sorted(received_args(receiver.on("/b"))) == sorted(
        (expected_transfer(1, i)["to"], str(1 + i)) for i in range(5)
    )
    assert receiver.on("/optimism") == []
    print(f"{transport}: 2000 events published {published:.1f}s and delivered {elapsed:.1f}s "
          "after the first transaction")
    assert listener.terminate() == 0


def test_websocket_only_configuration_makes_its_calls_on_a_second_connection(
    start_anvil, start_listener, receiver
):
    # Given a chain configured with a WebSocket URL and no HTTP URL
    node = start_anvil(chain_id=1)
    token = Token(node)
    add_endpoint(receiver.url("/ws"), contracts=[token.address])
    listener = start_listener({"ETHEREUM_WS": node.ws_url})
    listener.wait_started(1)

    # When 5 transactions of 10 Transfers are mined
    expected = stream_transfers(token, txs=5, per_tx=10, base=7_000)

    # Then all 50 arrive once each
    wait_until(lambda: len(receiver.on("/ws")) >= 50, 30, 0.1, "50 webhooks")
    time.sleep(1)
    got = [(r.json["data"]["topics"][2][-40:], int(r.json["data"]["data"], 16))
           for r in receiver.on("/ws")]
    assert sorted((f"0x{to[-40:]}", str(v)) for to, v in got) == sorted(expected)
    assert "listen.ws.subscribed chain=ethereum" in listener.log()
    assert listener.terminate() == 0
