"""A `newHeads` notification as web3 hands it over → the plain header the follower reads."""

from __future__ import annotations

import pytest
from hexbytes import HexBytes
from web3.datastructures import AttributeDict

from ethhook.listen.heads import notified_header
from ethhook.listen.records import BlockHeader

H1 = "0x" + "11" * 32
H2 = "0x" + "2A" * 32


def message(**over: object) -> dict[str, object]:
    result = {
        "number": 7,
        "hash": HexBytes(H1),
        "parentHash": HexBytes(H2),
        "timestamp": 1_700_000_000,
        "miner": HexBytes("0x" + "00" * 20),
    }
    result.update(over)
    return {"subscription": "0x1", "result": AttributeDict(result)}


def test_the_notification_carries_the_whole_header():
    assert notified_header(message()) == BlockHeader(
        number=7, hash=H1, parent_hash=H2.lower(), timestamp=1_700_000_000
    )


def test_hex_strings_are_read_as_the_node_sent_them():
    assert notified_header(message(number="0x7", hash=H1, timestamp="0x10")) == BlockHeader(
        number=7, hash=H1, parent_hash=H2.lower(), timestamp=16
    )


@pytest.mark.parametrize(
    "over",
    [{"hash": None}, {"parentHash": HexBytes("0x1234")}, {"number": True}, {"timestamp": -1}],
)
def test_a_header_with_a_field_missing_or_malformed_is_none(over):
    assert notified_header(message(**over)) is None


@pytest.mark.parametrize("raw", [None, "0x7", {"result": None}, {"result": 7}])
def test_a_message_without_a_header_is_none(raw):
    assert notified_header(raw) is None
