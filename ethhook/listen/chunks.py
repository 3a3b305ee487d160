"""The block-range size for catch-up: halves when a provider refuses a range, grows back slowly."""

from __future__ import annotations


class ChunkSizer:
    """How many blocks to read per `eth_getLogs` (and per batch of block headers).

    Providers refuse wide ranges in many ways (an error naming a limit, a timeout, a truncated
    answer), so any failure of a multi-block range shrinks it; only a single-block failure is
    a real error. After `grow_after` successes in a row the size doubles again, but not past the
    size that worked after the last refusal, so a fixed provider limit is not hit again and again;
    that ceiling is lifted after `forget_after` successes (limits that depend on log density).
    """

    def __init__(
        self, initial: int = 100, maximum: int = 1000, grow_after: int = 5, forget_after: int = 200
    ) -> None:
        if not 1 <= initial <= maximum:
            raise ValueError("expected 1 <= initial <= maximum")
        self.size = initial
        self.maximum = maximum
        self.ceiling = maximum
        self.grow_after = grow_after
        self.forget_after = forget_after
        self._successes = 0
        self._since_refusal = 0

    def shrink(self, failed_size: int) -> int:
        """The range of `failed_size` blocks was refused: the next one is at most half of it."""
        self.size = max(1, min(self.size, failed_size // 2))
        self.ceiling = self.size
        self._successes = 0
        self._since_refusal = 0
        return self.size

    def succeeded(self) -> None:
        self._successes += 1
        self._since_refusal += 1
        if self._since_refusal >= self.forget_after:
            self.ceiling = self.maximum
        if self._successes >= self.grow_after and self.size < self.ceiling:
            self.size = min(self.ceiling, self.size * 2)
            self._successes = 0
