"""Storage URLs -> stores, and the connection settings the Flask and FastAPI adapters share.

Django names a cache alias; the other frameworks name a store by URL (``memory://`` or
``redis://host:port/db``, also ``rediss://`` and ``unix://``). Parsing and validation live
here, framework-free, so both adapters accept the same keys and reject the same bad
values with the same words, at start-up.

Redis connections come from a *blocking* pool: when a burst outnumbers ``MAX_CONNECTIONS``
a request waits up to ``POOL_TIMEOUT`` seconds for a free connection instead of failing.
Commands are never retried by redis-py: a bucket update is not idempotent, so a retried
EVALSHA could charge a request twice; a failure goes to the failure policy instead.

An async Redis client belongs to the event loop that opened its connections, and an ASGI
app is not always served from one loop (``TestClient(app)`` outside ``with`` runs each
request in a new one), so ``LoopLocalStore`` opens one client per loop, on first use.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
import redis.asyncio

from ..bucket import Decision
from ..config import ConfigError, Problem, check_count, check_number
from .base import AsyncStore, Configs, Keys, SyncStore
from .memory import AsyncMemoryStore, MemoryStore
from .redis import AsyncRedisStore, RedisStore

__all__ = [
    "STORAGE_KEYS",
    "LoopLocalStore",
    "StorageOptions",
    "check_redis_url",
    "close_async_store",
    "close_sync_store",
    "make_async_store",
    "make_lazy_async_store",
    "make_sync_store",
    "parse_storage_options",
]

# Settings keys the Flask and FastAPI adapters accept on top of the common ones.
STORAGE_KEYS = (
    "STORAGE_URL",
    "DEFAULT_POLICY",
    "MAX_CONNECTIONS",
    "POOL_TIMEOUT",
    "SOCKET_TIMEOUT",
    "MEMORY_MAX_KEYS",
)
_REDIS_SCHEMES = ("redis", "rediss", "unix")
# Longest POOL_TIMEOUT / SOCKET_TIMEOUT: a longer wait only hides an outage from the
# failure policy, and the OS refuses far longer ones (an OverflowError on every request).
MAX_TIMEOUT = 300.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StorageOptions:
    """Where buckets live and how the Redis pool behaves."""

    url: str = "memory://"
    max_connections: int = 50
    pool_timeout: float = 5.0
    socket_timeout: float = 1.0
    memory_max_keys: int = 100_000

    @property
    def is_memory(self) -> bool:
        return self.url == "memory://"


def check_redis_url(url: Any, *, memory: bool = False) -> str:
    """A URL redis-py can connect to (``redis://``, ``rediss://``, ``unix://``), or also
    ``memory://`` when ``memory``; anything else names what is allowed."""
    if not isinstance(url, str):
        raise ConfigError(f"must be a string, got {url!r}", kind=Problem.STORAGE)
    if memory and url == "memory://":
        return url
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"{url!r} is not a valid URL: {exc}", kind=Problem.STORAGE) from None
    if parts.scheme not in _REDIS_SCHEMES or not (parts.hostname or parts.path):
        allowed = "'memory://' or " if memory else ""
        raise ConfigError(
            f"must be {allowed}'redis://host:port/db' (also rediss://, unix://), got {url!r}",
            kind=Problem.STORAGE,
        )
    return url


def _check_url(url: Any) -> str:
    return check_redis_url(url, memory=True)


def _seconds(value: Any) -> float:
    return check_number(value, "a number of seconds", maximum=MAX_TIMEOUT, kind=Problem.STORAGE)


def _count(value: Any) -> int:
    return check_count(value, "a count", kind=Problem.STORAGE)


def _read(
    extra: Mapping[str, Any], key: str, parse: Callable[[Any], T], default: T, where: str
) -> T:
    if key not in extra:
        return default
    try:
        return parse(extra[key])
    except ConfigError as exc:
        raise exc.at(f"{where}['{key}']") from None


def parse_storage_options(extra: Mapping[str, Any], where: str = "RATELIMIT") -> StorageOptions:
    """Validate the storage keys of ``Settings.extra``; a bad value names its key."""
    d = StorageOptions()
    return StorageOptions(
        url=_read(extra, "STORAGE_URL", _check_url, d.url, where),
        max_connections=_read(extra, "MAX_CONNECTIONS", _count, d.max_connections, where),
        pool_timeout=_read(extra, "POOL_TIMEOUT", _seconds, d.pool_timeout, where),
        socket_timeout=_read(extra, "SOCKET_TIMEOUT", _seconds, d.socket_timeout, where),
        memory_max_keys=_read(extra, "MEMORY_MAX_KEYS", _count, d.memory_max_keys, where),
    )


def _pool_kwargs(options: StorageOptions) -> dict[str, Any]:
    return {
        "max_connections": options.max_connections,
        "timeout": options.pool_timeout,
        "socket_timeout": options.socket_timeout,
        "socket_connect_timeout": options.socket_timeout,
    }


def make_sync_store(options: StorageOptions) -> SyncStore:
    """A ``MemoryStore``, or a ``RedisStore`` over a blocking pool (connects lazily)."""
    if options.is_memory:
        return MemoryStore(max_keys=options.memory_max_keys)
    pool = redis.BlockingConnectionPool.from_url(options.url, **_pool_kwargs(options))
    return RedisStore(redis.Redis(connection_pool=pool))


def make_async_store(options: StorageOptions, *, coalesce: bool = True) -> AsyncStore:
    """The async twin: build it inside the event loop that will use it (app lifespan).
    ``coalesce`` is the ``COALESCE`` setting (``Settings.coalesce``)."""
    if options.is_memory:
        return AsyncMemoryStore(max_keys=options.memory_max_keys)
    return _async_redis_store(options, coalesce)


def _async_redis_store(options: StorageOptions, coalesce: bool) -> AsyncRedisStore:
    pool = redis.asyncio.BlockingConnectionPool.from_url(options.url, **_pool_kwargs(options))
    return AsyncRedisStore(redis.asyncio.Redis(connection_pool=pool), coalesce=coalesce)


class LoopLocalStore:
    """An async Redis store that opens its own client in each event loop that calls it.

    Nothing connects until the first decision, so the store can be built anywhere (an
    app's constructor) and needs no start-up step. Each loop's client is closed by
    ``aclose`` awaited in that loop (an app's lifespan ending), or else when the loop
    shuts down: a task parked on it is cancelled then by ``asyncio.run``, anyio and
    uvicorn alike, and closes the client while the loop still runs. The buckets live in
    Redis, so every loop sees the same ones.
    """

    def __init__(self, options: StorageOptions, *, coalesce: bool = True) -> None:
        self.options = options
        self.coalesce = coalesce  # the COALESCE setting, for each loop's store
        self._lock = threading.Lock()  # loops may run in several threads
        self._open: dict[asyncio.AbstractEventLoop, tuple[AsyncRedisStore, asyncio.Task[None]]]
        self._open = {}

    def current(self) -> AsyncRedisStore:
        """This loop's store, opened now if this is the loop's first call."""
        loop = asyncio.get_running_loop()
        found = self._open.get(loop)
        if found is None:
            found = self._opened(loop)
        return found[0]

    def _opened(
        self, loop: asyncio.AbstractEventLoop
    ) -> tuple[AsyncRedisStore, asyncio.Task[None]]:
        store = _async_redis_store(self.options, self.coalesce)
        with self._lock:
            for gone in [other for other in self._open if other.is_closed()]:
                del self._open[gone]  # a loop closed without cancelling its tasks
            found = self._open[loop] = (store, loop.create_task(self._close_at_exit(store)))
        return found

    async def _close_at_exit(self, store: AsyncRedisStore) -> None:
        try:
            await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            if self._forget(asyncio.get_running_loop(), store):
                await close_async_store(store)

    def _forget(self, loop: asyncio.AbstractEventLoop, store: AsyncRedisStore) -> bool:
        with self._lock:
            if self._open.get(loop, (None,))[0] is not store:
                return False
            del self._open[loop]
            return True

    async def aclose(self) -> None:
        """Close the calling loop's client, if it opened one; the next call reopens."""
        found = self._open.get(asyncio.get_running_loop())
        if found is not None and self._forget(asyncio.get_running_loop(), found[0]):
            found[1].cancel()
            await close_async_store(found[0])

    async def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        return await self.current().take_all(keys, configs, cost)

    async def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        return await self.current().peek_all(keys, configs)

    async def reset(self, keys: Keys) -> None:
        await self.current().reset(keys)


def make_lazy_async_store(options: StorageOptions, *, coalesce: bool = True) -> AsyncStore:
    """An ``AsyncMemoryStore`` or a ``LoopLocalStore``: safe to build outside any loop.
    ``coalesce`` is the ``COALESCE`` setting (``Settings.coalesce``)."""
    if options.is_memory:
        return make_async_store(options)
    return LoopLocalStore(options, coalesce=coalesce)


def close_sync_store(store: SyncStore) -> None:
    if isinstance(store, RedisStore):
        store.client.close()
        store.client.connection_pool.disconnect()


async def close_async_store(store: AsyncStore) -> None:
    if isinstance(store, LoopLocalStore):
        await store.aclose()
    elif isinstance(store, AsyncRedisStore):
        await store.client.aclose()
        await store.client.connection_pool.disconnect()
