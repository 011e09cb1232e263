"""Exactness under real concurrency: threads, OS processes and asyncio tasks on one key.

Capacity 100 with a refill so slow that no token comes back during the test: whatever the
interleaving, exactly 100 unit requests may pass.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import redis.asyncio as aredis

from ratelimit_app.core import (
    AsyncMemoryStore,
    AsyncRedisStore,
    AsyncTokenBucketRateLimiter,
    MemoryStore,
    RateLimitConfig,
    RedisStore,
    TokenBucketRateLimiter,
)

CONFIG = RateLimitConfig(capacity=100, refill_rate=1e-9)
ATTEMPTS_PER_WORKER = 12


def hammer(limiter: TokenBucketRateLimiter, threads: int, identity: str) -> int:
    """Start ``threads`` threads together; each tries ATTEMPTS_PER_WORKER times."""
    barrier = threading.Barrier(threads)

    def worker() -> int:
        barrier.wait()
        return sum(limiter.allow_request(identity).allowed for _ in range(ATTEMPTS_PER_WORKER))

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(lambda _: worker(), range(threads)))


def process_worker(url: str, prefix: str, threads: int) -> int:
    client = redis.Redis.from_url(url, max_connections=threads)
    try:
        limiter = TokenBucketRateLimiter(
            CONFIG, RedisStore(client), key_prefix=prefix, on_store_error="raise"
        )
        return hammer(limiter, threads, "shared")
    finally:
        client.close()


def test_threads_on_memory_admit_exactly_capacity(key_prefix: str) -> None:
    limiter = TokenBucketRateLimiter(CONFIG, MemoryStore(), key_prefix=key_prefix)
    assert hammer(limiter, 32, "shared") == 100


def test_threads_on_redis_admit_exactly_capacity(redis_url: str, key_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url, max_connections=32)
    limiter = TokenBucketRateLimiter(
        CONFIG, RedisStore(client), key_prefix=key_prefix, on_store_error="raise"
    )
    try:
        assert hammer(limiter, 32, "shared") == 100
    finally:
        client.close()


@pytest.mark.slow
def test_processes_times_threads_on_redis_admit_exactly_capacity(
    redis_url: str, key_prefix: str
) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        admitted = pool.starmap(process_worker, [(redis_url, key_prefix, 16)] * 4)
    assert sum(admitted) == 100
    assert len(admitted) == 4


async def _tasks(limiter: AsyncTokenBucketRateLimiter, tasks: int) -> int:
    start = asyncio.Event()

    async def one() -> bool:
        await start.wait()
        return (await limiter.allow_request("shared")).allowed

    pending = [asyncio.ensure_future(one()) for _ in range(tasks)]
    await asyncio.sleep(0)
    start.set()
    return sum(await asyncio.gather(*pending))


async def test_asyncio_tasks_on_async_redis_admit_exactly_capacity(
    redis_url: str, key_prefix: str
) -> None:
    # A pool smaller than the burst that waits for a free connection instead of failing.
    pool = aredis.BlockingConnectionPool.from_url(redis_url, max_connections=20, timeout=10)
    client = aredis.Redis(connection_pool=pool)
    limiter = AsyncTokenBucketRateLimiter(
        CONFIG, AsyncRedisStore(client), key_prefix=key_prefix, on_store_error="raise"
    )
    try:
        assert await _tasks(limiter, 200) == 100
        assert await client.exists(limiter.key_for("shared")) == 1
    finally:
        await client.aclose()
        await pool.disconnect()


async def test_asyncio_tasks_on_async_memory_admit_exactly_capacity(key_prefix: str) -> None:
    limiter = AsyncTokenBucketRateLimiter(CONFIG, AsyncMemoryStore(), key_prefix=key_prefix)
    assert await _tasks(limiter, 200) == 100
