"""In-process buckets: one short critical section per decision, bounded in size.

Entries live in an ``OrderedDict`` in least-recently-used order. An expired bucket is
full, so it is dropped rather than kept; when the map is at ``max_keys`` the least
recently used bucket goes, so a flood of distinct identities costs bounded memory
(an evicted bucket comes back full: the bound trades exactness for the rarest clients
against the process staying alive).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

from ..bucket import BucketState, Decision, decide, refill, take
from ..config import ConfigError, RateLimitConfig

__all__ = ["AsyncMemoryStore", "MemoryStore"]

Clock = Callable[[], float]
_SWEEP = 2  # expired entries examined at the LRU end per write: amortised clean-up


class MemoryStore:
    def __init__(self, max_keys: int = 100_000, clock: Clock = time.monotonic) -> None:
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ConfigError(f"max_keys must be an int >= 1, got {max_keys!r}")
        self.max_keys = max_keys
        self.clock = clock
        self._lock = threading.Lock()
        # key -> (state, expires_at)
        self._buckets: OrderedDict[str, tuple[BucketState, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _current(self, key: str, now: float) -> BucketState | None:
        entry = self._buckets.get(key)
        if entry is None:
            return None
        if now >= entry[1]:
            del self._buckets[key]
            return None
        return entry[0]

    def _store(self, key: str, state: BucketState, config: RateLimitConfig, now: float) -> None:
        buckets = self._buckets
        buckets[key] = (state, state.updated_at + config.ttl)
        buckets.move_to_end(key)
        for _ in range(_SWEEP):
            oldest = next(iter(buckets))
            if oldest == key or buckets[oldest][1] > now:
                break
            del buckets[oldest]
        while len(buckets) > self.max_keys:
            buckets.popitem(last=False)

    def take(self, key: str, config: RateLimitConfig, cost: float) -> Decision:
        with self._lock:
            now = self.clock()
            state, decision = take(self._current(key, now), config, now, cost)
            self._store(key, state, config, now)
        return decision

    def peek(self, key: str, config: RateLimitConfig) -> Decision:
        with self._lock:
            now = self.clock()
            state = refill(self._current(key, now), config, now)
        return decide(config, 0.0, True, state.tokens)

    def reset(self, key: str) -> None:
        with self._lock:
            self._buckets.pop(key, None)

    def scan(self, prefix: str = "") -> Iterator[tuple[str, BucketState]]:
        """Live buckets whose key starts with ``prefix`` (a snapshot, for inspection)."""
        with self._lock:
            now = self.clock()
            items = [
                (key, entry[0])
                for key, entry in self._buckets.items()
                if key.startswith(prefix) and now < entry[1]
            ]
        return iter(items)


class AsyncMemoryStore:
    """The same buckets behind ``await``: the lock is held for microseconds, never
    across an await, so it cannot stall the event loop."""

    def __init__(self, max_keys: int = 100_000, clock: Clock = time.monotonic) -> None:
        self.sync = MemoryStore(max_keys=max_keys, clock=clock)

    def __len__(self) -> int:
        return len(self.sync)

    async def take(self, key: str, config: RateLimitConfig, cost: float) -> Decision:
        return self.sync.take(key, config, cost)

    async def peek(self, key: str, config: RateLimitConfig) -> Decision:
        return self.sync.peek(key, config)

    async def reset(self, key: str) -> None:
        self.sync.reset(key)

    def scan(self, prefix: str = "") -> Iterator[tuple[str, BucketState]]:
        return self.sync.scan(prefix)
