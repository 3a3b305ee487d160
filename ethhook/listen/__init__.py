"""Chain → event batches: the listener (the only package that imports web3).

One process follows every enabled chain, one asyncio task per chain (`follower.ChainFollower`),
so a chain whose node is down or answers garbage never holds up another. Per chain:

* Heads: `newHeads` over a WebSocket used for nothing else (`heads`); every other call goes over
  HTTP, or over a second WebSocket when no HTTP URL is configured (`rpc`). Without a live
  subscription the follower polls `eth_blockNumber` every `poll_interval_s`.
* Each pass reads from the cursor to the node's head in ranges: the headers of a range in one
  JSON-RPC batch, its logs in one `eth_getLogs` filtered to the watched contracts. The headers
  must chain onto the cursor block by parent hash and every log must carry its header's hash,
  otherwise the range is read again (or, when the cursor block itself was replaced, the follower
  walks back to the common ancestor and marks the orphaned blocks' events removed).
* A range's events, its block hashes and the cursor are stored in one transaction, so the cursor
  never passes an event that is not in the database; the stored events are the matcher's outbox.
  Only then are they published to the matcher (batches of `match_batch_size` event ids, one task
  each, leased to the message); a batch whose message is lost is found again by the beat job when
  its lease expires. The range is the unit of flushing: events are never held back for a timer.
* `chain_cursors.head_number` is set to the cursor, i.e. the highest block the listener has
  verified to be one chain with the blocks below it: confirmations are counted only over
  blocks checked by parent hash, so a reorg the listener has not processed yet can never
  release a confirmed delivery for an orphaned event.
* A new or changed endpoint reaches the log filter within `runner.WATCH_REFRESH_S` seconds.

The follower's decisions are pure functions (`plan`: which range next; `reorg`: the common
ancestor and what it orphans); `sync` asks the node and sequences them, `progress` publishes and
saves through the store and the publisher that `runner.make_follower` hands the follower.

`ethhook listen` calls `run_listener`; SIGTERM/SIGINT publish what is in hand, save the cursor and
exit 0.
"""

from __future__ import annotations

from ethhook.config import Settings


def run_listener(settings: Settings) -> int:
    """Follow every enabled chain until SIGTERM/SIGINT; returns the process exit code."""
    from ethhook.listen.runner import run_listener as run

    return run(settings)


__all__ = ["run_listener"]
