"""Buckets kept in a Django cache alias, with the atomicity each backend can give.

* ``LocMemCache``: a local-memory cache is private to one process anyway, so its buckets
  live in a bounded core ``MemoryStore`` (one per cache LOCATION and process) and each
  decision is one critical section under that store's lock, on the core arithmetic.
* ``django_redis.cache.RedisCache`` and Django's ``django.core.cache.backends.redis.
  RedisCache``: the core ``RedisStore`` runs its Lua script on the backend's raw
  redis-py client, so every decision is one atomic EVALSHA shared by all processes.
  The core key (``prefix:policy:identity``) is used as is on the raw client: Django's
  ``KEY_PREFIX``/``VERSION``/``KEY_FUNCTION`` do not apply to buckets, so the admin and
  ``redis-cli`` see the same names.
* Any other backend: best effort, a get then a set through the cache API under a lock
  that only serialises this process. System check ``ratelimit.W001`` says so.

Every backend failure becomes ``StoreError`` so the limiter's failure policy applies.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

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
from .core.stores.memory import MemoryStore
from .core.stores.redis import RedisStore

__all__ = ["AsyncDjangoCacheStore", "DjangoCacheStore", "backend_kind"]

Clock = Callable[[], float]
T = TypeVar("T")
_LOCMEM: dict[int, MemoryStore] = {}
_LOCMEM_LOCK = threading.Lock()


def backend_kind(cache: BaseCache) -> str:
    """``locmem``, ``django-redis``, ``redis-cache`` (Django's own) or ``other``."""
    if isinstance(cache, LocMemCache):
        return "locmem"
    if isinstance(cache, RedisCache):
        return "redis-cache"
    try:
        from django_redis.cache import RedisCache as DjangoRedisCache
    except ImportError:  # pragma: no cover - django-redis is optional
        return "other"
    return "django-redis" if isinstance(cache, DjangoRedisCache) else "other"


def _locmem_buckets(cache: LocMemCache, clock: Clock | None) -> MemoryStore:
    """One bucket map per LocMemCache location and process, as Django shares one dict
    per location: every store over the same location sees the same buckets."""
    if clock is not None:
        return MemoryStore(clock=clock)
    shared = id(cache._cache)  # type: ignore[attr-defined]  # kept alive by locmem._caches
    with _LOCMEM_LOCK:
        return _LOCMEM.setdefault(shared, MemoryStore())


def _redis_client(alias: str, cache: BaseCache, kind: str) -> Any:
    if kind == "django-redis":
        from django_redis import get_redis_connection

        return get_redis_connection(alias, write=True)
    # Django's RedisCache: the first server is the one written to.
    return cache._cache.get_client(None, write=True)  # type: ignore[attr-defined]


@contextmanager
def _translated(what: str) -> Iterator[None]:
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
        with _translated("cache"):
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
            with _translated("cache"):
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
        with _translated("cache"):
            self.cache.delete_many(list(keys))

    def adjust(
        self, keys: Keys, configs: Configs, add: float = 0.0, *, empty: bool = False
    ) -> list[float]:
        """Best effort, like ``take_all``: atomic within this process only."""
        with self._lock:
            now = self.clock()
            states = adjust_all([self.get_state(k) for k in keys], configs, now, add, empty)
            with _translated("cache"):
                for key, config, state in zip(keys, configs, states, strict=True):
                    ttl = full_after(config, state.tokens, self._min_ttl)
                    self.cache.set(key, (state.tokens, state.updated_at), timeout=ttl)
        return [state.tokens for state in states]

    def now(self) -> float:
        return self.clock()

    def scan(self, prefix: str = "") -> Iterator[tuple[str, BucketState]]:
        """The cache API cannot enumerate keys: nothing to list (look one identity up)."""
        return iter(())


class DjangoCacheStore:
    """A ``SyncStore`` over the Django cache ``alias`` (see the module docstring).

    The backend is resolved on first use, so a store can be built before the caches are
    usable. ``clock`` is for tests; ``None`` means the backend's natural clock (Redis
    ``TIME``, monotonic for locmem, wall time for other caches shared between hosts).
    """

    def __init__(self, alias: str = "default", clock: Clock | None = None) -> None:
        self.alias = alias
        self.clock = clock
        self._impl: Any = None
        self._lock = threading.Lock()

    @property
    def kind(self) -> str:
        return backend_kind(caches[self.alias])

    @property
    def impl(self) -> Any:
        """The store doing the work: a ``MemoryStore``, ``RedisStore`` or ``CacheAPIStore``."""
        if self._impl is None:
            with self._lock:
                if self._impl is None:
                    self._impl = self._build()
        return self._impl

    def _build(self) -> Any:
        cache = caches[self.alias]
        kind = backend_kind(cache)
        if kind == "locmem":
            return _locmem_buckets(cache, self.clock)  # type: ignore[arg-type]
        if kind == "other":
            return CacheAPIStore(self.alias, self.clock)
        with _translated(f"cache {self.alias!r}"):
            client = _redis_client(self.alias, cache, kind)
        return RedisStore(client, clock=self.clock)

    def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        return self.impl.take_all(keys, configs, cost)  # type: ignore[no-any-return]

    def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        return self.impl.peek_all(keys, configs)  # type: ignore[no-any-return]

    def reset(self, keys: Keys) -> None:
        self.impl.reset(keys)

    def adjust(
        self, keys: Keys, configs: Configs, add: float = 0.0, *, empty: bool = False
    ) -> list[float]:
        """Add tokens to (or empty) the buckets: one atomic step on Redis and locmem."""
        return self.impl.adjust(keys, configs, add, empty=empty)  # type: ignore[no-any-return]

    def now(self) -> float:
        """The clock bucket states are written in: Redis TIME, monotonic for locmem."""
        return self.impl.now()  # type: ignore[no-any-return]

    def get_state(self, key: str) -> BucketState | None:
        return self.impl.get_state(key)  # type: ignore[no-any-return]

    def scan(self, prefix: str = "") -> Iterator[tuple[str, BucketState]]:
        """Stored buckets under ``prefix``: Redis SCAN, this process's locmem buckets, or
        nothing for a backend that cannot enumerate."""
        return self.impl.scan(prefix)  # type: ignore[no-any-return]


class AsyncDjangoCacheStore:
    """The async twin: locmem answers inline (a microsecond lock, never held across an
    await); network backends run the sync call in a worker thread, as Django's own async
    cache methods do, so the event loop never blocks on Redis."""

    def __init__(
        self,
        alias: str = "default",
        clock: Clock | None = None,
        *,
        sync: DjangoCacheStore | None = None,
    ) -> None:
        self.sync = sync or DjangoCacheStore(alias, clock)

    @property
    def clock(self) -> Clock | None:
        """The same clock as the sync store, for anything timing this store's answers."""
        return self.sync.clock

    async def _call(self, method: Callable[..., T], *args: Any) -> T:
        if isinstance(self.sync.impl, MemoryStore):
            return method(*args)
        return await sync_to_async(method, thread_sensitive=False)(*args)

    async def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        return await self._call(self.sync.take_all, keys, configs, cost)

    async def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        return await self._call(self.sync.peek_all, keys, configs)

    async def reset(self, keys: Keys) -> None:
        await self._call(self.sync.reset, keys)

    async def adjust(
        self, keys: Keys, configs: Configs, add: float = 0.0, *, empty: bool = False
    ) -> list[float]:
        return await self._call(
            functools.partial(self.sync.adjust, empty=empty), keys, configs, add
        )

    async def get_state(self, key: str) -> BucketState | None:
        return await self._call(self.sync.get_state, key)
