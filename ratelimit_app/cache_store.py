"""Buckets kept in a Django cache alias, with the atomicity each backend can give.

The store for a cache alias is chosen by its backend (``cache_backends.py``): locmem's
buckets in a core ``MemoryStore``, a Redis cache's in the core ``RedisStore`` on the
backend's raw client (one atomic EVALSHA per decision), any other backend through the
cache API at best effort (``cache_api_store.py``, system check ``ratelimit.W001``).

``RATELIMIT['STORE']`` may name the store by URL instead of a cache alias (one Redis
node, a Sentinel-managed master, a Cluster, or ``memory://``); the same class holds it.

Async views reach Redis with a native ``redis.asyncio`` client to the same server, built
from the sync client's pool (so from the same ``CACHES`` entry or URL), one per event
loop and closed with it: no worker thread per decision. Only a backend whose client
cannot be copied that way (a Sentinel-backed django-redis, any non-Redis cache) runs the
sync call in a worker thread, as Django's own async cache methods do. An async view
served over WSGI runs in a loop asgiref makes for that one request; there the sync
client is called inline (the loop serves nothing else), rather than opening a
connection per request.

Every backend failure becomes ``StoreError`` so the limiter's failure policy applies.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterator
from typing import Any

from asgiref.sync import AsyncToSync, sync_to_async
from django.core.cache import caches

from .cache_api_store import Clock
from .cache_backends import backend_kind, store_for_cache
from .core.bucket import BucketState, Decision
from .core.stores.base import AsyncStore, Configs, Keys, failure_scope
from .core.stores.from_url import (
    StorageOptions,
    close_async_store,
    make_async_store,
    make_sync_store,
)
from .core.stores.inline import InlineStore
from .core.stores.memory import AsyncMemoryStore, MemoryStore
from .core.stores.per_loop import PerLoopStore
from .core.stores.redis import AsyncRedisStore, RedisStore
from .core.stores.twins import async_client_for
from .core.stores.urls import redacted

__all__ = [
    "AsyncDjangoCacheStore",
    "DjangoCacheStore",
    "ThreadedStore",
    "backend_kind",
]


class DjangoCacheStore:
    """A ``SyncStore`` over the Django cache ``alias``, or over the store ``options``
    names by URL (``RATELIMIT['STORE']``); see the module docstring.

    The backend is resolved on first use, so a store can be built before the caches are
    usable. ``clock`` is for tests; ``None`` means the backend's natural clock (Redis
    ``TIME``, monotonic for locmem, wall time for other caches shared between hosts).
    """

    def __init__(
        self,
        alias: str | None = "default",
        clock: Clock | None = None,
        *,
        options: StorageOptions | None = None,
    ) -> None:
        self.alias = None if options is not None else alias
        self.options = options
        self.clock = clock
        self._impl: Any = None
        self._lock = threading.Lock()

    @property
    def kind(self) -> str:
        """``locmem``, ``django-redis``, ``redis-cache``, ``other``; for a URL, what it
        names: ``memory``, ``redis``, ``sentinel`` or ``cluster``."""
        if self.options is not None:
            return self.options.target.kind
        return backend_kind(caches[self.alias or "default"])

    @property
    def label(self) -> str:
        """Where the buckets are, for people: never a password."""
        if self.options is not None:
            return f"store {redacted(self.options.url)}"
        return f"cache {self.alias}"

    @property
    def impl(self) -> Any:
        """The store doing the work: a ``MemoryStore``, ``RedisStore`` or ``CacheAPIStore``."""
        if self._impl is None:
            with self._lock:
                if self._impl is None:
                    self._impl = self._build()
        return self._impl

    def _build(self) -> Any:
        if self.options is not None:
            return make_sync_store(self.options)
        return store_for_cache(self.alias or "default", self.clock)

    def async_twin(self) -> AsyncStore:
        """The store async code should await: the same memory buckets inline, a native
        async Redis client per event loop, or this store's calls in a worker thread."""
        impl = self.impl
        if isinstance(impl, MemoryStore):
            return AsyncMemoryStore(shared=impl)
        options = self.options
        if options is not None:
            return PerLoopStore(lambda: make_async_store(options), close_async_store)
        if isinstance(impl, RedisStore) and async_client_for(impl.client) is not None:
            return PerLoopStore(self._open_async_redis, close_async_store)
        return ThreadedStore(self)

    def _open_async_redis(self) -> AsyncStore:
        return AsyncRedisStore(async_client_for(self.impl.client), clock=self.clock)

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

    def failure_scope(self, keys: Keys) -> str | None:
        return failure_scope(self._impl, keys)


def _loop_for_one_call() -> bool:
    """Whether the running loop is one asgiref started for a single sync caller (an async
    view served over WSGI, Django's sync test client): it closes when that call returns,
    so a client opened in it would serve one decision. asgiref itself tells such loops
    apart by this registry."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    return loop in getattr(AsyncToSync, "loop_thread_executors", {})


class ThreadedStore:
    """A sync store's calls run in a worker thread, so the event loop never blocks."""

    def __init__(self, sync: DjangoCacheStore) -> None:
        self.sync = sync

    async def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        return await sync_to_async(self.sync.take_all, thread_sensitive=False)(keys, configs, cost)

    async def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        return await sync_to_async(self.sync.peek_all, thread_sensitive=False)(keys, configs)

    async def reset(self, keys: Keys) -> None:
        await sync_to_async(self.sync.reset, thread_sensitive=False)(keys)

    async def adjust(
        self, keys: Keys, configs: Configs, add: float = 0.0, *, empty: bool = False
    ) -> list[float]:
        adjust = functools.partial(self.sync.adjust, empty=empty)
        return await sync_to_async(adjust, thread_sensitive=False)(keys, configs, add)

    async def get_state(self, key: str) -> BucketState | None:
        return await sync_to_async(self.sync.get_state, thread_sensitive=False)(key)


class AsyncDjangoCacheStore:
    """The async twin of ``DjangoCacheStore``: the same buckets, reached by the store
    ``DjangoCacheStore.async_twin`` picks on first use."""

    def __init__(
        self,
        alias: str = "default",
        clock: Clock | None = None,
        *,
        sync: DjangoCacheStore | None = None,
    ) -> None:
        self.sync = sync or DjangoCacheStore(alias, clock)
        self.inline = InlineStore(self.sync)
        self._twin: Any = None

    @property
    def clock(self) -> Clock | None:
        """The same clock as the sync store, for anything timing this store's answers."""
        return self.sync.clock

    @property
    def twin(self) -> Any:
        if self._twin is None:
            self._twin = self.sync.async_twin()
        return self._twin

    @property
    def current(self) -> Any:
        """The store to await now: the twin, or the sync store inline in a loop made
        for one call."""
        return self.inline if _loop_for_one_call() else self.twin

    async def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        return await self.current.take_all(keys, configs, cost)  # type: ignore[no-any-return]

    async def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        return await self.current.peek_all(keys, configs)  # type: ignore[no-any-return]

    async def reset(self, keys: Keys) -> None:
        await self.current.reset(keys)

    async def adjust(
        self, keys: Keys, configs: Configs, add: float = 0.0, *, empty: bool = False
    ) -> list[float]:
        return await self.current.adjust(keys, configs, add, empty=empty)  # type: ignore[no-any-return]

    async def get_state(self, key: str) -> BucketState | None:
        return await self.current.get_state(key)  # type: ignore[no-any-return]

    def failure_scope(self, keys: Keys) -> str | None:
        return failure_scope(self._twin, keys)
