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
from collections.abc import Callable, Iterator, Sequence

from ..bucket import BucketState, Decision, binding, consume, decide, refill
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
        # key -> (tokens, updated_at, expires_at), least recently used first
        self._buckets: OrderedDict[str, tuple[float, float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _insert(self, key: str, entry: tuple[float, float, float], now: float) -> None:
        """A new key: drop a few expired buckets from the LRU end, then enforce the bound."""
        buckets = self._buckets
        for _ in range(_SWEEP):
            if not buckets:
                break
            oldest = next(iter(buckets))
            if buckets[oldest][2] > now:
                break
            del buckets[oldest]
        buckets[key] = entry
        while len(buckets) > self.max_keys:
            buckets.popitem(last=False)

    def take(self, key: str, config: RateLimitConfig, cost: float) -> Decision:
        capacity = config.capacity
        with self._lock:
            now = self.clock()
            entry = self._buckets.get(key)
            if entry is None or now >= entry[2]:  # never seen or expired: full
                tokens, updated_at, allowed = consume(
                    capacity, now, now, capacity, config.refill_rate, cost
                )
                self._buckets.pop(key, None)
                self._insert(key, (tokens, updated_at, updated_at + config.ttl), now)
            else:
                tokens, updated_at, allowed = consume(
                    entry[0], entry[1], now, capacity, config.refill_rate, cost
                )
                self._buckets[key] = (tokens, updated_at, updated_at + config.ttl)
                self._buckets.move_to_end(key)
        return decide(config, cost, allowed, tokens)

    def take_all(
        self, keys: Sequence[str], configs: Sequence[RateLimitConfig], cost: float
    ) -> Decision:
        """Several buckets in one critical section: all consume ``cost`` or none does."""
        with self._lock:
            now = self.clock()
            refilled = [
                self._refilled(key, config, now) for key, config in zip(keys, configs, strict=True)
            ]
            allowed = all(tokens >= cost for tokens, _ in refilled)
            decisions = []
            for key, config, (tokens, updated_at) in zip(keys, configs, refilled, strict=True):
                if allowed:
                    tokens -= cost
                self._buckets.pop(key, None)
                self._insert(key, (tokens, updated_at, updated_at + config.ttl), now)
                decisions.append(decide(config, cost, allowed, tokens))
        return binding(decisions)

    def peek_all(self, keys: Sequence[str], configs: Sequence[RateLimitConfig]) -> Decision:
        return binding([self.peek(key, config) for key, config in zip(keys, configs, strict=True)])

    def _refilled(self, key: str, config: RateLimitConfig, now: float) -> tuple[float, float]:
        entry = self._buckets.get(key)
        if entry is None or now >= entry[2]:
            return config.capacity, now
        tokens, updated_at, _ = consume(
            entry[0], entry[1], now, config.capacity, config.refill_rate, 0.0
        )
        return tokens, updated_at

    def peek(self, key: str, config: RateLimitConfig) -> Decision:
        with self._lock:
            now = self.clock()
            entry = self._buckets.get(key)
        state = None if entry is None or now >= entry[2] else BucketState(entry[0], entry[1])
        return decide(config, 0.0, True, refill(state, config, now).tokens)

    def reset(self, key: str) -> None:
        with self._lock:
            self._buckets.pop(key, None)

    def scan(self, prefix: str = "") -> Iterator[tuple[str, BucketState]]:
        """Live buckets whose key starts with ``prefix`` (a snapshot, for inspection)."""
        with self._lock:
            now = self.clock()
            items = [
                (key, BucketState(entry[0], entry[1]))
                for key, entry in self._buckets.items()
                if key.startswith(prefix) and now < entry[2]
            ]
        return iter(items)


class AsyncMemoryStore:
    """The same buckets behind ``await``: the lock is held for microseconds, never
    across an await, so it cannot stall the event loop."""

    def __init__(self, max_keys: int = 100_000, clock: Clock = time.monotonic) -> None:
        self.sync = MemoryStore(max_keys=max_keys, clock=clock)

    def __len__(self) -> int:
        return len(self.sync)

    @property
    def clock(self) -> Clock:
        return self.sync.clock

    async def take(self, key: str, config: RateLimitConfig, cost: float) -> Decision:
        return self.sync.take(key, config, cost)

    async def peek(self, key: str, config: RateLimitConfig) -> Decision:
        return self.sync.peek(key, config)

    async def take_all(
        self, keys: Sequence[str], configs: Sequence[RateLimitConfig], cost: float
    ) -> Decision:
        return self.sync.take_all(keys, configs, cost)

    async def peek_all(self, keys: Sequence[str], configs: Sequence[RateLimitConfig]) -> Decision:
        return self.sync.peek_all(keys, configs)

    async def reset(self, key: str) -> None:
        self.sync.reset(key)

    def scan(self, prefix: str = "") -> Iterator[tuple[str, BucketState]]:
        return self.sync.scan(prefix)
