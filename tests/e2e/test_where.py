"""Acceptance (issue 13): endpoints with --where conditions on indexed and non-indexed arguments,
combined and with `in (…)`, each receive exactly the Transfers that satisfy them, once each."""

from __future__ import annotations

import time

import pytest

from ethhook.abi import to_checksum_address
from ethhook.demo.devchain import ACCOUNT as DEPLOYER
from tests.support.chain import Token, calldata
from tests.support.endpoints import add_endpoint
from tests.support.factories import TRANSFER
from tests.support.listener import wait_for_cursor
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]

HOT_1 = "0x" + "ab" * 20
HOT_2 = "0x" + "cd" * 20


def numbered(n: int) -> str:
    """The recipient of the Transfer TestToken.emitTransfers emits with value n."""
    return "0x" + f"{n:040x}"


def send(token: Token, function: str, to: str, amount: int) -> None:
    token.node.send(
        token.address,
        calldata(f"{function}(address,uint256)", ["address", "uint256"], [to, amount]),
    )


def test_each_endpoint_receives_exactly_the_transfers_its_conditions_select(
    start_anvil, start_listener, receiver
):
    # Given a token and four endpoints with conditions on its Transfers
    node = start_anvil(chain_id=1)
    token = Token(node)
    where = {
        # a wallet app: Transfers to one user (indexed equality, answered by the topic index)
        "/wallet": [f"to == {to_checksum_address(numbered(105))}"],
        # a treasury monitor: Transfers above a threshold (non-indexed, checked after the query)
        "/treasury": ["value >= 1000000000000000000000"],
        # an exchange: deposits to any of its hot wallets, above dust (indexed `in` + non-indexed)
        "/exchange": [
            f"to in ({numbered(110)}, {HOT_1.upper().replace('0X', '0x')})",
            "value > 109",
        ],
        # transfers out of the deployer up to 5 tokens (indexed equality + non-indexed bound)
        "/outgoing": [f"from == {DEPLOYER}", "value <= 5000000000000000000"],
    }
    for path, conditions in where.items():
        _, receiver.secrets[path] = add_endpoint(
            receiver.url(path), contracts=[token.address], events=[TRANSFER], where=conditions
        )
    listener = start_listener({"ETHEREUM_HTTP": node.http_url})
    listener.wait_started(1)

    # When the token emits 20 numbered mints, two large mints and two transfers out of the deployer
    token.emit_transfers(20, 100)  # 0x0 → numbered(100 + i), value 100 + i
    send(token, "mint", DEPLOYER, 10**30)
    send(token, "transfer", HOT_1, 5 * 10**18)
    send(token, "transfer", HOT_2, 6 * 10**18)
    send(token, "mint", numbered(105), 10**21)
    wait_for_cursor(1, node.block_number())

    # Then each endpoint receives exactly the Transfers its conditions select, once each
    zero = "0x" + "00" * 20
    expected = {
        "/wallet": {(zero, numbered(105), "105"), (zero, numbered(105), str(10**21))},
        "/treasury": {(zero, DEPLOYER, str(10**30)), (zero, numbered(105), str(10**21))},
        "/exchange": {(zero, numbered(110), "110"), (DEPLOYER, HOT_1, str(5 * 10**18))},
        "/outgoing": {(DEPLOYER, HOT_1, str(5 * 10**18))},
    }
    wait_until(
        lambda: all(len(receiver.on(p)) >= len(e) for p, e in expected.items()),
        60,
        0.2,
        "every expected webhook",
    )
    time.sleep(3)  # a duplicate or an unwanted event would arrive now
    for path, transfers in expected.items():
        got = receiver.on(path)
        args = [r.json["data"]["decoded"]["args"] for r in got]
        assert len(got) == len(transfers), (path, args)
        assert {(a["from"].lower(), a["to"].lower(), a["value"]) for a in args} == transfers
        assert all(r.verified for r in got)
    assert listener.terminate() == 0
