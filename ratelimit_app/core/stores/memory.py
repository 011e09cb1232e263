"""In-process buckets: one short critical section per decision, bounded in size.

Entries live in an ``OrderedDict`` in least-recently-used order. An entry expires when
its bucket would be full again, so an expired one may be dropped; when the map is at
``max_keys`` the least recently used bucket goes, so a flood of distinct identities costs
bounded memory (an evicted bucket comes back full: the bound trades exactness for the
rarest clients against the process staying alive).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

from ..bucket import (
    BucketState,
    Decision,
    adjust_all,
    binding,
    consume,
    decide,
    full_after,
    refill,
    take_all,
)
from ..config import RateLimitConfig, check_count
from .base import Configs, Keys
from .inline import InlineStore

__all__ = ["AsyncMemoryStore", "MemoryStore"]

Clock = Callable[[], float]
_SWEEP = 2  # expired entries examined at the LRU end per write: amortised clean-up


class MemoryStore:
    def __init__(self, max_keys: int = 100_000, clock: Clock = time.monotonic) -> None:
        self.max_keys = check_count(max_keys, "max_keys")
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

    def _state(self, key: str) -> BucketState | None:
        """The stored state; an expired entry still holds it (the refill makes it full),
        expiry only decides which entries the sweep may drop."""
        entry = self._buckets.get(key)
        return None if entry is None else BucketState(entry[0], entry[1])

    def _write(self, key: str, state: BucketState, config: RateLimitConfig, now: float) -> None:
        tokens, updated_at = state
        entry = (tokens, updated_at, updated_at + full_after(config, tokens))
        if key in self._buckets:
            self._buckets[key] = entry
            self._buckets.move_to_end(key)
        else:
            self._insert(key, entry, now)

    def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        """One critical section: every bucket consumes ``cost`` or none does."""
        if len(keys) == 1:
            return self._take_one(keys[0], configs[0], cost)
        with self._lock:
            now = self.clock()
            states, decision = take_all([self._state(k) for k in keys], configs, now, cost)
            for key, config, state in zip(keys, configs, states, strict=True):
                if decision.allowed:
                    self._write(key, state, config, now)
                elif key in self._buckets:  # a denial writes nothing, but the key is in use
                    self._buckets.move_to_end(key)
        return decision

    def _take_one(self, key: str, config: RateLimitConfig, cost: float) -> Decision:
        """The hot path: ``consume`` on plain floats, no intermediate objects."""
        capacity, rate = config.capacity, config.refill_rate
        buckets = self._buckets
        with self._lock:
            now = self.clock()
            entry = buckets.get(key)
            # an entry expires when its bucket is full again (only the sweep reads it)
            if entry is None:  # never seen (or dropped): full
                tokens, updated_at, allowed = consume(capacity, now, now, capacity, rate, cost)
                self._insert(key, (tokens, now, now + (capacity - tokens) / rate), now)
            else:
                tokens, updated_at, allowed = consume(
                    entry[0], entry[1], now, capacity, rate, cost
                )
                if allowed:  # a denial changes nothing: the stored state still holds
                    buckets[key] = (tokens, updated_at, updated_at + (capacity - tokens) / rate)
                buckets.move_to_end(key)
        return decide(config, cost, allowed, tokens)

    def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        with self._lock:
            now = self.clock()
            states = [self._state(key) for key in keys]
        return binding(
            [
                decide(config, 0.0, True, refill(state, config, now).tokens)
                for state, config in zip(states, configs, strict=True)
            ]
        )

    def reset(self, keys: Keys) -> None:
        with self._lock:
            for key in keys:
                self._buckets.pop(key, None)

    def adjust(
        self, keys: Keys, configs: Configs, add: float = 0.0, *, empty: bool = False
    ) -> list[float]:
        """Add tokens to (or empty) the buckets in one critical section; their tokens."""
        with self._lock:
            now = self.clock()
            states = adjust_all([self._state(k) for k in keys], configs, now, add, empty)
            for key, config, state in zip(keys, configs, states, strict=True):
                self._write(key, state, config, now)
        return [state.tokens for state in states]

    def now(self) -> float:
        return self.clock()

    def get_state(self, key: str) -> BucketState | None:
        """The stored state of one live bucket (None: absent or expired, so full)."""
        with self._lock:
            entry = self._buckets.get(key)
            if entry is None or self.clock() >= entry[2]:
                return None
            return BucketState(entry[0], entry[1])

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


class AsyncMemoryStore(InlineStore):
    """The same buckets behind ``await``: the lock is held for microseconds, never
    across an await, so it cannot stall the event loop."""

    sync: MemoryStore

    def __init__(
        self,
        max_keys: int = 100_000,
        clock: Clock = time.monotonic,
        *,
        shared: MemoryStore | None = None,
    ) -> None:
        """``shared``: answer from that store's buckets (a sync twin's), not new ones."""
        super().__init__(shared if shared is not None else MemoryStore(max_keys, clock))

    def __len__(self) -> int:
        return len(self.sync)

    @property
    def clock(self) -> Clock:
        return self.sync.clock

    def scan(self, prefix: str = "") -> Iterator[tuple[str, BucketState]]:
        return self.sync.scan(prefix)
