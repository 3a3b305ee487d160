"""Capped exponential backoff with jitter, for reconnects and failing RPC calls."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays of base·2ⁿ seconds capped at `cap`, each drawn from [d/2, d] so that many
    listeners restarted together do not retry in lockstep."""

    def __init__(
        self,
        base_s: float = 0.5,
        cap_s: float = 30.0,
        rand: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.failures = 0
        self._rand = rand

    def next_delay(self) -> float:
        ceiling = min(self.cap_s, self.base_s * (2 ** min(self.failures, 30)))
        self.failures += 1
        return self._rand(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0
