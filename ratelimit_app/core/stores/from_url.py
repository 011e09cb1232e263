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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..config import ConfigError, Problem, check_count, check_number
from .base import AsyncStore, SyncStore
from .memory import AsyncMemoryStore, MemoryStore
from .redis import AsyncRedisStore, RedisStore
from .urls import StoreURL, parse_store_url

__all__ = [
    "POOL_KEYS",
    "STORAGE_KEYS",
    "StorageOptions",
    "close_async_store",
    "close_sync_store",
    "make_async_store",
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


def _check_url(url: Any) -> str:
    parse_store_url(url)
    return str(url)


def _seconds(value: Any) -> float:
    return check_number(value, "a number of seconds", kind=Problem.STORAGE)


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


def _redis_client(target: StoreURL, options: StorageOptions) -> Any:
    """A sync client for a Redis ``target``: one node, a Sentinel master or a Cluster."""
    if target.kind == "cluster":
        node = cast(Any, redis.cluster.ClusterNode)  # untyped in redis-py
        return redis.cluster.RedisCluster(
            startup_nodes=[node(h, p) for h, p in target.hosts],
            max_connections=options.max_connections,
            retry=Retry(NoBackoff(), 0),
            **target.credentials,
            **_timeouts(options),
        )
    if target.kind == "sentinel":
        sentinel = cast(Any, redis.sentinel.Sentinel)(
            list(target.hosts), sentinel_kwargs=_timeouts(options), **_timeouts(options)
        )
        return sentinel.master_for(
            target.service,
            connection_pool_class=_BlockingSentinelPool,
            db=target.db,
            max_connections=options.max_connections,
            timeout=options.pool_timeout,
            **target.credentials,
        )
    pool = redis.BlockingConnectionPool.from_url(target.url, **_pool_kwargs(options))
    return redis.Redis(connection_pool=pool)


def _async_redis_client(target: StoreURL, options: StorageOptions) -> Any:
    """The async twin of ``_redis_client``; build it in the event loop that will use it."""
    if target.kind == "cluster":
        return redis.asyncio.cluster.RedisCluster(
            startup_nodes=[redis.asyncio.cluster.ClusterNode(h, p) for h, p in target.hosts],
            max_connections=options.max_connections,
            retry=AsyncRetry(NoBackoff(), 0),
            **target.credentials,
            **_timeouts(options),
        )
    if target.kind == "sentinel":
        sentinel = cast(Any, redis.asyncio.sentinel.Sentinel)(
            list(target.hosts), sentinel_kwargs=_timeouts(options), **_timeouts(options)
        )
        return sentinel.master_for(
            target.service,
            connection_pool_class=_AsyncBlockingSentinelPool,
            db=target.db,
            max_connections=options.max_connections,
            timeout=options.pool_timeout,
            **target.credentials,
        )
    pool = redis.asyncio.BlockingConnectionPool.from_url(target.url, **_pool_kwargs(options))
    return redis.asyncio.Redis(connection_pool=pool)


def make_sync_store(options: StorageOptions) -> SyncStore:
    """A ``MemoryStore``, or a ``RedisStore`` over a blocking pool (connects lazily)."""
    if options.is_memory:
        return MemoryStore(max_keys=options.memory_max_keys)
    return RedisStore(_redis_client(options.target, options))


def make_async_store(options: StorageOptions) -> AsyncStore:
    """The async twin: build it inside the event loop that will use it (app lifespan)."""
    if options.is_memory:
        return AsyncMemoryStore(max_keys=options.memory_max_keys)
    return AsyncRedisStore(_async_redis_client(options.target, options))


def close_sync_store(store: SyncStore) -> None:
    if isinstance(store, RedisStore):
        store.client.close()
        pool = getattr(store.client, "connection_pool", None)
        if pool is not None:  # a cluster client closes its nodes' pools itself
            pool.disconnect()


async def close_async_store(store: AsyncStore) -> None:
    if isinstance(store, AsyncRedisStore):
        await store.client.aclose()
        pool = getattr(store.client, "connection_pool", None)
        if pool is not None:
            await pool.disconnect()
