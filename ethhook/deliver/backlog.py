"""A task's claimed deliveries, their bodies built a chunk at a time as the sending reaches them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ethhook.deliver.store import Work

# A worker's memory then grows with its concurrency × LOAD_CHUNK, not with concurrency ×
# deliveries per task. 50 (was 20): a task of 100 reads its bodies with its claim and one more
# statement instead of four, each a pooled connection's pre-ping, BEGIN, SELECT and COMMIT in the
# deliver worker and in PostgreSQL; 100 tasks at once hold ~3 MB more bodies.
LOAD_CHUNK = 50

Loader = Callable[[Sequence[int]], list[Work]]


class Backlog:
    """Loaded work first, in order, then the ids still to load; `load` builds the bodies."""

    def __init__(self, loaded: list[Work], unloaded: Sequence[int]) -> None:
        self._loaded = loaded
        self._unloaded = list(unloaded)

    @classmethod
    def loading(cls, claimed: Sequence[int], load: Loader) -> Backlog:
        """A backlog of `claimed` whose first chunk `load` builds now."""
        return cls(load(claimed[:LOAD_CHUNK]), claimed[LOAD_CHUNK:])

    @classmethod
    def preloaded(
        cls, claimed: Sequence[int], first: list[Work], covered: int = LOAD_CHUNK
    ) -> Backlog:
        """A backlog whose work of claimed[:covered] was read with the claim (the first chunk,
        or all of an ordered claim): only the ids after those are left to load."""
        return cls(first, claimed[covered:])

    def __bool__(self) -> bool:
        return bool(self._loaded or self._unloaded)

    def short_of(self, size: int) -> bool:
        """Fewer than `size` bodies are ready and more are still to load."""
        return len(self._loaded) < size and bool(self._unloaded)

    def top_up(self, size: int, load: Loader) -> None:
        """Load one more chunk when fewer than `size` bodies are ready."""
        if self.short_of(size):
            self._loaded += load(self._unloaded[:LOAD_CHUNK])
            self._unloaded = self._unloaded[LOAD_CHUNK:]

    def has_loaded(self) -> bool:
        return bool(self._loaded)

    def pop(self) -> Work:
        return self._loaded.pop(0)

    def left(self) -> list[int]:
        """The ids not sent, loaded or not, in order."""
        return [w.delivery_id for w in self._loaded] + self._unloaded
