"""A node's log answers as raw JSON-RPC dicts, as the listener's parsers receive them."""

from __future__ import annotations

H1 = "0x" + "11" * 32
H2 = "0x" + "22" * 32
TX = "0x" + "aa" * 32
TOKEN = "0x" + "ab" * 20


def raw_log(
    block: int = 5, block_hash: str = H1, index: int = 0, address: str = TOKEN, **over: object
) -> dict[str, object]:
    log = {
        "address": address.upper().replace("0X", "0x"),
        "topics": [H2.upper().replace("0X", "0x")],
        "data": "0x" + "00" * 31 + "07",
        "blockNumber": hex(block),
        "blockHash": block_hash,
        "transactionHash": TX,
        "transactionIndex": "0x0",
        "logIndex": hex(index),
        "removed": False,
    }
    log.update(over)
    return log
