"""What can go wrong talking to a chain node, as classes the follower turns into one log line each."""

from __future__ import annotations

from ethhook.exceptions import TransientError
from ethhook.redact import redact_in


def error_text(exc: BaseException, url: str | None) -> str:
    """`Type: message` of a transport's exception, with the node URL it may quote redacted."""
    return f"{type(exc).__name__}: {redact_in(str(exc), url)}"


class RpcError(TransientError):
    """A JSON-RPC call failed; retrying later (or with a smaller range) may succeed."""

    def __init__(self, method: str, detail: str) -> None:
        super().__init__(f"{method}: {detail}")
        self.method = method
        self.detail = detail


class RpcTimeout(RpcError):
    """The node did not answer within the timeout."""


class RpcConnectionError(RpcError):
    """The node could not be reached, or the connection broke."""


class RpcBadResponse(RpcError):
    """The node answered something that is not a valid JSON-RPC reply (garbage, wrong shape)."""


class RpcErrorResponse(RpcError):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: object, message: str) -> None:
        super().__init__(method, f"error {code}: {message}")
        self.code = code
        self.message = message


class ChainMoved(TransientError):  # noqa: N818 (a signal, not a failure)
    """The chain changed while a range was being read (a reorg in progress); read it again."""


class ChainLocked(TransientError):  # noqa: N818 (a state, not a failure)
    """Another listener process follows this chain; this one waits until it goes away."""
