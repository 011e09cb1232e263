"""Store URLs -> stores, and the connection settings Django's ``STORE`` and the Flask and
FastAPI adapters share.

Django may name a cache alias; everything else names a store by URL (``memory://``, one
Redis node, a Sentinel-managed master or a Cluster: see ``urls``). Validation lives here,
framework-free, so every integration accepts the same keys and rejects the same bad
values with the same words, at start-up.

Redis connections come from a *blocking* pool: when a burst outnumbers ``MAX_CONNECTIONS``
a request waits up to ``POOL_TIMEOUT`` seconds for a free connection instead of failing
(on a Cluster the bound is per node and a burst beyond it fails instead). Commands are
never retried by redis-py: a bucket update is not idempotent, so a retried EVALSHA could
charge a request twice; a failure goes to the failure policy instead.

An async Redis client belongs to the event loop that opened its connections, and an ASGI
app is not always served from one loop (``TestClient(app)`` outside ``with`` runs each
request in a new one), so ``make_lazy_async_store`` opens one client per loop, on first
use (``per_loop.PerLoopStore``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from ..config import ConfigError, Problem, check_count, check_number
from .base import AsyncStore, SyncStore
from .memory import AsyncMemoryStore, MemoryStore
from .per_loop import PerLoopStore
from .redis import AsyncRedisStore, RedisStore
from .urls import StoreURL, parse_store_url, redacted

__all__ = [
    "POOL_KEYS",
    "STORAGE_KEYS",
    "StorageOptions",
    "check_redis_url",
    "close_async_store",
    "close_sync_store",
    "make_async_store",
    "make_lazy_async_store",
    "make_sync_store",
    "parse_storage_options",
]

# What closing a connection that is already broken may raise.
CLOSE_ERRORS = (RedisError, OSError, TimeoutError)
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
    def target(self) -> StoreURL:
        return parse_store_url(self.url)

    @property
    def is_memory(self) -> bool:
        return self.url == "memory://"


def check_redis_url(url: Any, *, memory: bool = False) -> str:
    """A URL of one Redis node redis-py can connect to (``redis://``, ``rediss://``,
    ``unix://``), or also ``memory://`` when ``memory``; anything else names what is
    allowed. (A cache backend takes only these; a store also takes Sentinel and Cluster
    URLs: ``urls.parse_store_url``.)"""
    if not isinstance(url, str):
        raise ConfigError(f"must be a string, got {url!r}", kind=Problem.STORAGE)
    if memory and url == "memory://":
        return url
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(
            f"{redacted(url)!r} is not a valid URL: {exc}", kind=Problem.STORAGE
        ) from None
    if parts.scheme not in _REDIS_SCHEMES or not (parts.hostname or parts.path):
        allowed = "'memory://' or " if memory else ""
        raise ConfigError(
            f"must be {allowed}'redis://host:port/db' (also rediss://, unix://), "
            f"got {redacted(url)!r}",
            kind=Problem.STORAGE,
        )
    return url


def _check_url(url: Any) -> str:
    parse_store_url(url)
    return str(url)


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


# The connection settings beside the URL, shared by every framework.
POOL_KEYS = ("MAX_CONNECTIONS", "POOL_TIMEOUT", "SOCKET_TIMEOUT", "MEMORY_MAX_KEYS")


def parse_storage_options(
    extra: Mapping[str, Any], where: str = "RATELIMIT", url_key: str = "STORAGE_URL"
) -> StorageOptions:
    """Validate the storage keys of ``Settings.extra``; a bad value names its key.
    ``url_key`` is where the URL is (Django calls it ``STORE``)."""
    d = StorageOptions()
    return StorageOptions(
        url=_read(extra, url_key, _check_url, d.url, where),
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


def _timeouts(options: StorageOptions) -> dict[str, Any]:
    return {
        "socket_timeout": options.socket_timeout,
        "socket_connect_timeout": options.socket_timeout,
    }


class _BlockingSentinelPool(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's master discovery with the blocking pool's wait for a free connection."""


class _AsyncBlockingSentinelPool(
    redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool
):
    """The async twin of ``_BlockingSentinelPool``."""


@dataclass(frozen=True, slots=True)
class _Kit:
    """redis-py's classes for one side, sync or async: the clients are built alike."""

    redis: Any
    pool: Any
    cluster: Any
    node: Any
    sentinel: Any
    sentinel_pool: Any
    retry: Any


_SYNC = _Kit(
    redis.Redis, redis.BlockingConnectionPool, redis.cluster.RedisCluster,
    redis.cluster.ClusterNode, redis.sentinel.Sentinel, _BlockingSentinelPool, Retry,
)  # fmt: skip
_ASYNC = _Kit(
    redis.asyncio.Redis, redis.asyncio.BlockingConnectionPool, redis.asyncio.cluster.RedisCluster,
    redis.asyncio.cluster.ClusterNode, redis.asyncio.sentinel.Sentinel,
    _AsyncBlockingSentinelPool, AsyncRetry,
)  # fmt: skip


def _redis_client(target: StoreURL, options: StorageOptions, kit: _Kit) -> Any:
    """A client of ``kit``'s side for a Redis ``target``: one node, a Sentinel master or a
    Cluster (an async one must be built in the event loop that will use it)."""
    if target.kind == "cluster":
        return kit.cluster(
            startup_nodes=[kit.node(host, port) for host, port in target.hosts],
            max_connections=options.max_connections,
            retry=kit.retry(NoBackoff(), 0),
            **target.credentials,
            **_timeouts(options),
        )
    if target.kind == "sentinel":
        sentinel = kit.sentinel(
            list(target.hosts), sentinel_kwargs=_timeouts(options), **_timeouts(options)
        )
        return sentinel.master_for(
            target.service,
            connection_pool_class=kit.sentinel_pool,
            db=target.db,
            max_connections=options.max_connections,
            timeout=options.pool_timeout,
            **target.credentials,
        )
    return kit.redis(connection_pool=kit.pool.from_url(target.url, **_pool_kwargs(options)))


def make_sync_store(options: StorageOptions) -> SyncStore:
    """A ``MemoryStore``, or a ``RedisStore`` over a blocking pool (connects lazily)."""
    if options.is_memory:
        return MemoryStore(max_keys=options.memory_max_keys)
    return RedisStore(_redis_client(options.target, options, _SYNC))


def make_async_store(options: StorageOptions, *, coalesce: bool = True) -> AsyncStore:
    """The async twin: build it inside the event loop that will use it (app lifespan).
    ``coalesce`` is the ``COALESCE`` setting (``Settings.coalesce``)."""
    if options.is_memory:
        return AsyncMemoryStore(max_keys=options.memory_max_keys)
    return AsyncRedisStore(_redis_client(options.target, options, _ASYNC), coalesce=coalesce)


def make_lazy_async_store(options: StorageOptions, *, coalesce: bool = True) -> AsyncStore:
    """An ``AsyncMemoryStore``, or a ``PerLoopStore`` that opens a Redis client in each
    event loop that calls it: safe to build outside any loop."""
    if options.is_memory:
        return make_async_store(options)
    return PerLoopStore(lambda: make_async_store(options, coalesce=coalesce), close_async_store)


def close_sync_store(store: SyncStore) -> None:
    """Close the store's connections: its pool's, and a Sentinel client's own sentinels'.
    Each part is closed even if another fails: a broken connection is as closed as it
    can be, and the rest must not stay open because of it."""
    if not isinstance(store, RedisStore):
        return
    pool = getattr(store.client, "connection_pool", None)  # a cluster closes its own
    parts = [store.client.close, *([pool.disconnect] if pool else [])]
    for part in [*parts, *(sentinel.close for sentinel in _sentinels(pool))]:
        with suppress(*CLOSE_ERRORS):
            part()


async def close_async_store(store: AsyncStore) -> None:
    """The async twin of ``close_sync_store``; a ``PerLoopStore`` closes the calling
    loop's store."""
    if isinstance(store, PerLoopStore):
        await store.aclose()
    if not isinstance(store, AsyncRedisStore):
        return
    pool = getattr(store.client, "connection_pool", None)
    parts = [store.client.aclose, *([pool.disconnect] if pool else [])]
    for part in [*parts, *(sentinel.aclose for sentinel in _sentinels(pool))]:
        with suppress(*CLOSE_ERRORS):
            await part()


def _sentinels(pool: Any) -> list[Any]:
    """The clients a Sentinel-managed pool asks for the master (none for other pools)."""
    manager = getattr(pool, "sentinel_manager", None)
    return list(getattr(manager, "sentinels", ()))
