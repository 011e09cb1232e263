"""Clients and limiters on the session's real three-master Redis Cluster (``redis_cluster``
in tests/conftest.py).

Tests isolate themselves by key prefix (the shared ``key_prefix`` fixture), never by
flushing. Drills that kill a master start their own cluster instead of this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from redis.cluster import RedisCluster

from ratelimit_app.core import (
    AsyncRedisStore,
    AsyncTokenBucketRateLimiter,
    RateLimitConfig,
    RedisStore,
    TokenBucketRateLimiter,
)
from tests.cluster_server import RedisClusterServer
from tests.core.conftest import Harness


@pytest.fixture
def cluster_client(redis_cluster: RedisClusterServer) -> Iterator[RedisCluster]:
    client = redis_cluster.client()
    yield client
    client.close()


def _same(value: Any) -> Any:
    return value


@pytest.fixture(params=["cluster", "async-cluster"])
def make_cluster_limiter(
    request: pytest.FixtureRequest,
    redis_cluster: RedisClusterServer,
    key_prefix: str,
    clock: Callable[[], float],
) -> Iterator[Callable[..., Harness]]:
    """``make(config, **limiter_options)``: a limiter over RedisStore or AsyncRedisStore."""
    loop = asyncio.new_event_loop()
    cleanups: list[Callable[[], Any]] = []

    def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
        return loop.run_until_complete(coro)

    def make(config: RateLimitConfig, **options: Any) -> Harness:
        options.setdefault("key_prefix", key_prefix)
        options.setdefault("on_store_error", "raise")
        if request.param == "cluster":
            client = redis_cluster.client()
            cleanups.append(client.close)
            store = RedisStore(client, clock=clock)
            return Harness(TokenBucketRateLimiter(config, store, **options), _same, None)
        aclient = redis_cluster.async_client()
        cleanups.append(lambda: run_async(aclient.aclose()))
        astore = AsyncRedisStore(aclient, clock=clock)
        return Harness(AsyncTokenBucketRateLimiter(config, astore, **options), run_async, None)

    yield make
    for cleanup in reversed(cleanups):
        cleanup()
    loop.close()
