"""What a replay says about a failing node is EthHook's own words: never the node's address,
its URL's secrets or what it answered."""

from __future__ import annotations

import pytest

from ethhook.exceptions import TransientError
from ethhook.listen.errors import (
    ChainMoved,
    RpcBadResponse,
    RpcConnectionError,
    RpcErrorResponse,
    RpcTimeout,
)
from ethhook.replay.errors import node_failure

NODE_WORDS = "upstream 10.9.8.7:8545 https://user:pw@node.example/v2/SECRETKEY"


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (
            RpcConnectionError("eth_getLogs", f"ClientConnectorError: {NODE_WORDS}"),
            "the chain node could not be reached (eth_getLogs)",
        ),
        (RpcTimeout("eth_blockNumber", NODE_WORDS), "the chain node did not answer in time"),
        (
            RpcErrorResponse("eth_getLogs", -32005, NODE_WORDS),
            "the chain node answered with error -32005 (eth_getLogs)",
        ),
        (
            RpcErrorResponse("eth_getLogs", NODE_WORDS, NODE_WORDS),
            "the chain node answered with an error (eth_getLogs)",
        ),
        (
            RpcErrorResponse("eth_getLogs", 10**40, NODE_WORDS),
            "the chain node answered with an error (eth_getLogs)",
        ),
        (
            RpcBadResponse("eth_getBlockByNumber x3", f"answer is not JSON: {NODE_WORDS!r}"),
            "the chain node gave an answer that is not valid JSON-RPC (eth_getBlockByNumber x3)",
        ),
        (ChainMoved(NODE_WORDS), "the chain changed while its blocks were read"),
        (TransientError(NODE_WORDS), "the chain node failed"),
    ],
)
def test_a_node_failure_is_said_in_ethhooks_words(exc, said):
    text = node_failure(exc)
    assert text.startswith(said)
    for word in ("10.9.8.7", "8545", "SECRETKEY", "pw", "upstream", "node.example"):
        assert word not in text
