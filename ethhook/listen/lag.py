"""When a chain's listener has been too far behind the node's head for too long (the
`chain.lagging` ops webhook): a pure watch over the lags the follower sees, told once per spell."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LagWatch:
    """More than `blocks` behind the head for `after_s` seconds, continuously: `observe` returns
    True once; a lag back within `blocks` ends the spell (the next one is told again)."""

    blocks: int
    after_s: float
    since: float | None = None  # when the current spell began (monotonic seconds)
    told: bool = False

    def observe(self, lag: int | None, now: float) -> bool:
        if lag is None or lag <= self.blocks:
            self.since, self.told = None, False
            return False
        if self.since is None:
            self.since = now
        if self.told or now - self.since < self.after_s:
            return False
        self.told = True
        return True

    def retry(self) -> None:
        """Telling failed (the database): tell again at the next look."""
        self.told = False


@dataclass(frozen=True)
class Lagging:
    """A listener too far behind its node for too long: what `chain.lagging` says."""

    node_head: int
    cursor: int
    lag_blocks: int
    lagging_for_s: float
