"""New heads over a WebSocket subscription: a connection that carries nothing else."""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import websockets
from web3 import AsyncWeb3, WebSocketProvider
from web3.exceptions import Web3Exception

from ethhook.listen.backoff import Backoff
from ethhook.listen.errors import RpcBadResponse, error_text
from ethhook.listen.records import BlockHeader, parse_header
from ethhook.redact import redact_in, redact_url

log = logging.getLogger(__name__)

# py_ecc, which web3 imports (through eth_account), raises the recursion limit to 100,000: more
# than the C stack holds, so an answer nested that deep (200 KB of "[") would crash the process
# with SIGSEGV in the JSON decoder instead of raising RecursionError. Nothing the listener calls
# needs more than Python's default.
PYTHON_RECURSION_LIMIT = 1000
sys.setrecursionlimit(min(sys.getrecursionlimit(), PYTHON_RECURSION_LIMIT))

# Ping the node this often; a connection that stops answering is dropped after the timeout.
PING_INTERVAL_S = 10.0
PING_TIMEOUT_S = 20.0


def notified_header(message: Any) -> BlockHeader | None:
    """The header a `newHeads` notification carries, as a plain record; None when it lacks one
    of the fields or one is malformed (the follower then asks the node instead)."""
    result = message.get("result") if isinstance(message, Mapping) else None
    if not isinstance(result, Mapping):
        return None
    raw = {key: _as_json(result.get(key)) for key in ("number", "hash", "parentHash", "timestamp")}
    try:
        return parse_header(raw, "newHeads")
    except RpcBadResponse:
        return None


def _as_json(value: Any) -> Any:
    """web3's formatted value back to its JSON-RPC form (ints as quantities, bytes as 0x hex)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return hex(value)
    if isinstance(value, bytes):
        return "0x" + bytes(value).hex()  # HexBytes 1 and 2 disagree on a 0x from .hex()
    return value


class HeadSubscription:
    """Follows `newHeads` and calls `on_head(header)` for each; `on_head(None)` after every
    (re)connect so the follower catches up on what it missed meanwhile."""

    def __init__(
        self,
        chain: str,
        url: str,
        on_head: Callable[[BlockHeader | None], None],
        on_connected: Callable[[], None] = lambda: None,
        backoff: Backoff | None = None,
    ) -> None:
        self.chain = chain
        self.url = url
        self.shown_url = redact_url(url)  # providers put keys in the path and the query
        self.on_head = on_head
        self.on_connected = on_connected
        self.backoff = backoff or Backoff(base_s=0.5, cap_s=30.0)
        self.live = False

    async def run(self) -> None:
        while True:
            try:
                await self._follow()
                problem = "the node closed the subscription"
            except (OSError, TimeoutError, websockets.WebSocketException, Web3Exception) as exc:
                problem = error_text(exc, self.url)
            # A web3 internal error must not end the subscription for good. It is logged with its
            # traceback as text, redacted (not exc_info): the messages in it may quote the URL.
            except Exception as exc:  # noqa: BLE001 (logged below, traceback included)
                problem = error_text(exc, self.url)
                log.error(
                    "listen.ws.unexpected chain=%s url=%s error=%s\n%s",
                    self.chain,
                    self.shown_url,
                    problem,
                    redact_in("".join(traceback.format_exception(exc)).rstrip(), self.url),
                )
            finally:
                was_live, self.live = self.live, False
            delay = self.backoff.next_delay()
            log.warning(
                "listen.ws.%s chain=%s url=%s error=%s; reconnecting in %.1fs",
                "disconnected" if was_live else "connect_failed",
                self.chain,
                self.shown_url,
                problem,
                delay,
            )
            # Until it is back, the follower polls over HTTP (or its own RPC connection).
            self.on_head(None)
            await asyncio.sleep(delay)

    async def _follow(self) -> None:
        provider = WebSocketProvider(
            self.url,
            websocket_kwargs={"ping_interval": PING_INTERVAL_S, "ping_timeout": PING_TIMEOUT_S},
            max_connection_retries=1,
        )
        async with AsyncWeb3(provider) as w3:
            await w3.eth.subscribe("newHeads")
            self.live = True
            self.backoff.reset()
            log.info("listen.ws.subscribed chain=%s url=%s", self.chain, self.shown_url)
            self.on_connected()
            self.on_head(None)
            async for message in w3.socket.process_subscriptions():
                self.on_head(notified_header(message))
