"""Storage URLs and pool options -> stores, against a real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from ratelimit_app.core import (
    AsyncMemoryStore,
    AsyncRedisStore,
    ConfigError,
    MemoryStore,
    RateLimitConfig,
    RedisStore,
    StoreError,
    parse_settings,
)
from ratelimit_app.core.policies import default_policy
from ratelimit_app.core.stores.from_url import (
    STORAGE_KEYS,
    StorageOptions,
    close_async_store,
    close_sync_store,
    make_async_store,
    make_sync_store,
    parse_storage_options,
)

CONFIG = RateLimitConfig(10, 0.001)


def test_defaults_are_memory_and_a_bounded_pool() -> None:
    options = parse_storage_options({})
    assert options == StorageOptions()
    assert options.is_memory
    assert isinstance(make_sync_store(options), MemoryStore)
    assert isinstance(make_async_store(options), AsyncMemoryStore)


@pytest.mark.parametrize(
    "url",
    ["redis://localhost:6379/0", "rediss://user:pw@cache.example:6380/2", "unix:///tmp/r.sock"],
)
def test_redis_urls_are_accepted(url: str) -> None:
    assert parse_storage_options({"STORAGE_URL": url}).url == url


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"STORAGE_URL": "memory"}, "STORAGE_URL"),
        ({"STORAGE_URL": "http://localhost"}, "STORAGE_URL"),
        ({"STORAGE_URL": "redis://h:99999999/0"}, "not a valid URL"),
        ({"STORAGE_URL": 6379}, "must be a store URL string"),
        ({"MAX_CONNECTIONS": 2.5}, "MAX_CONNECTIONS"),
        ({"MAX_CONNECTIONS": True}, "MAX_CONNECTIONS"),
        ({"POOL_TIMEOUT": 0}, "POOL_TIMEOUT"),
        ({"SOCKET_TIMEOUT": float("inf")}, "SOCKET_TIMEOUT"),
        ({"MEMORY_MAX_KEYS": 0}, "MEMORY_MAX_KEYS"),
    ],
)
def test_bad_options_name_the_setting(extra: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as info:
        parse_storage_options(extra, where="app.config['RATELIMIT']")
    assert str(info.value).startswith("app.config['RATELIMIT']")


def test_default_policy_must_name_a_policy() -> None:
    raw = {"POLICIES": {"api": {"capacity": 1, "refill_rate": 1}}}
    assert default_policy(parse_settings(raw, extra_keys=STORAGE_KEYS)) is None
    chosen = parse_settings({**raw, "DEFAULT_POLICY": "api"}, extra_keys=STORAGE_KEYS)
    assert default_policy(chosen) == "api"
    for bad in ("nope", ["api"]):
        wrong = parse_settings({**raw, "DEFAULT_POLICY": bad}, extra_keys=STORAGE_KEYS)
        with pytest.raises(ConfigError, match=r"DEFAULT_POLICY.*configured: api"):
            default_policy(wrong)


def test_sync_redis_store_uses_a_blocking_pool(
    redis_url: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    store = make_sync_store(StorageOptions(url=redis_url, max_connections=3, pool_timeout=2))
    assert isinstance(store, RedisStore)
    pool = store.client.connection_pool
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert (pool.max_connections, pool.timeout) == (3, 2)
    assert store.take_all((f"{key_prefix}:a",), (CONFIG,), 4).remaining == pytest.approx(
        6, abs=0.01
    )
    assert redis_client.exists(f"{key_prefix}:a") == 1
    close_sync_store(store)


async def test_async_pool_waits_for_a_free_connection(
    redis_url: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    """Two connections, 40 concurrent decisions: all wait their turn, none fails."""
    store = make_async_store(StorageOptions(url=redis_url, max_connections=2, pool_timeout=30))
    assert isinstance(store, AsyncRedisStore)
    assert isinstance(store.client.connection_pool, redis.asyncio.BlockingConnectionPool)
    try:
        decisions = await asyncio.gather(
            *(store.take_all((f"{key_prefix}:burst",), (CONFIG,), 1) for _ in range(40))
        )
    finally:
        await close_async_store(store)
    assert sum(d.allowed for d in decisions) == 10
    assert redis_client.exists(f"{key_prefix}:burst") == 1


def test_a_rediss_url_decides_over_tls(tls_redis: Any, key_prefix: str) -> None:
    """``rediss://`` with redis-py's TLS options in the query, sync and async; the same
    port without TLS is refused (so TLS is what carried the decisions)."""
    store = make_sync_store(StorageOptions(url=tls_redis.url()))
    try:
        assert store.take_all((f"{key_prefix}:tls",), (CONFIG,), 4).remaining == pytest.approx(
            6, abs=0.01
        )
    finally:
        close_sync_store(store)

    async def decide() -> float:
        astore = make_async_store(StorageOptions(url=tls_redis.url()))
        try:
            return (await astore.take_all((f"{key_prefix}:tls",), (CONFIG,), 1)).remaining
        finally:
            await close_async_store(astore)

    assert asyncio.run(decide()) == pytest.approx(5, abs=0.01)
    plain = make_sync_store(StorageOptions(url=f"redis://127.0.0.1:{tls_redis.port}/0"))
    with pytest.raises(StoreError):
        plain.take_all((f"{key_prefix}:tls",), (CONFIG,), 1)
    close_sync_store(plain)
