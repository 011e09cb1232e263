"""Best effort for a Django cache with no atomic primitive we can use (system check
``ratelimit.W001`` says so): a get then a set through the cache API, under a lock that
only serialises this process.

``translated`` turns a cache backend's own exceptions into ``StoreError``, here and where
``cache_backends.py`` reaches a backend's client, so the limiter's failure policy applies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.core.cache import BaseCache, caches

from .core.bucket import (
    BucketState,
    Decision,
    adjust_all,
    binding,
    decide,
    full_after,
    refill,
    take_all,
)
from .core.config import CLIENT_CLOCK_MIN_TTL
from .core.stores.base import Configs, Keys, StoreError

__all__ = ["CacheAPIStore", "Clock", "translated"]

Clock = Callable[[], float]


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Any cache backend failure becomes ``StoreError``: backends raise their own types."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"{what}: {type(exc).__name__}: {exc}") from exc


class CacheAPIStore:
    """Best effort for backends without an atomic primitive we can use: get + set,
    serialised within this process only (other processes can interleave)."""

    def __init__(self, alias: str, clock: Clock | None = None) -> None:
        self.alias = alias
        self.clock = clock or time.time
        # cache timeouts run on real time, which a clock of the caller's own need not follow
        self._min_ttl = 1 if clock is None else CLIENT_CLOCK_MIN_TTL
        self._lock = threading.Lock()

    @property
    def cache(self) -> BaseCache:
        return caches[self.alias]  # per thread, as Django hands out cache connections

    def get_state(self, key: str) -> BucketState | None:
        with translated("cache"):
            raw = self.cache.get(key)
        return None if raw is None else BucketState(float(raw[0]), float(raw[1]))

    def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        """Every bucket must hold the cost; all consume or none (within this process)."""
        with self._lock:
            now = self.clock()
            states = [self.get_state(key) for key in keys]
            written, decision = take_all(states, configs, now, cost)
            if not decision.allowed:  # a denial changes nothing: nothing to write
                return decision
            with translated("cache"):
                for key, config, state in zip(keys, configs, written, strict=True):
                    ttl = full_after(config, state.tokens, self._min_ttl)
                    self.cache.set(key, (state.tokens, state.updated_at), timeout=ttl)
        return decision

    def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        now = self.clock()
        return binding(
            [
                decide(config, 0.0, True, refill(self.get_state(key), config, now).tokens)
                for key, config in zip(keys, configs, strict=True)
            ]
        )

    def reset(self, keys: Keys) -> None:
        with translated("cache"):
            self.cache.delete_many(list(keys))

    def adjust(
        self, keys: Keys, configs: Configs, add: float = 0.0, *, empty: bool = False
    ) -> list[float]:
        """Best effort, like ``take_all``: atomic within this process only."""
        with self._lock:
            now = self.clock()
            states = adjust_all([self.get_state(k) for k in keys], configs, now, add, empty)
            with translated("cache"):
                for key, config, state in zip(keys, configs, states, strict=True):
                    ttl = full_after(config, state.tokens, self._min_ttl)
                    self.cache.set(key, (state.tokens, state.updated_at), timeout=ttl)
        return [state.tokens for state in states]

    def now(self) -> float:
        return self.clock()

    def scan(self, prefix: str = "") -> Iterator[tuple[str, BucketState]]:
        """The cache API cannot enumerate keys: nothing to list (look one identity up)."""
        return iter(())
