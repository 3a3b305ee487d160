"""What a replay tells its caller when the chain node fails: what went wrong, never the node's
address or its own words (an application reads it; the log keeps the detail)."""

from __future__ import annotations

from ethhook.exceptions import TransientError
from ethhook.listen.errors import (
    ChainMoved,
    RpcBadResponse,
    RpcConnectionError,
    RpcError,
    RpcErrorResponse,
    RpcTimeout,
)

# A JSON-RPC error code is shown when it is one (a small integer), never the node's message.
_MAX_CODE = 2**31


def node_failure(exc: TransientError) -> str:
    """One line saying how the node failed, made of EthHook's own words only."""
    if isinstance(exc, ChainMoved):
        return "the chain changed while its blocks were read"
    if isinstance(exc, RpcConnectionError):
        what = "could not be reached"
    elif isinstance(exc, RpcTimeout):
        what = "did not answer in time"
    elif isinstance(exc, RpcErrorResponse):
        code = exc.code
        known = type(code) is int and abs(code) < _MAX_CODE
        what = f"answered with error {code}" if known else "answered with an error"
    elif isinstance(exc, RpcBadResponse):
        what = "gave an answer that is not valid JSON-RPC"
    else:
        what = "failed"
    # The method is EthHook's own label (`eth_getLogs`, `eth_getBlockByNumber x12`).
    method = f" ({exc.method})" if isinstance(exc, RpcError) else ""
    return f"the chain node {what}{method}"
