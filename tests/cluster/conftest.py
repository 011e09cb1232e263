"""A real three-master Redis Cluster for the whole session, plus clients and limiters on it.

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
    Decision,
    RateLimitConfig,
    RedisStore,
    TokenBucketRateLimiter,
)
from tests.cluster_server import RedisClusterServer


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServer]:
    """Started once (about two seconds), always stopped and its files removed."""
    with RedisClusterServer(masters=3) as cluster:
        yield cluster


@pytest.fixture
def cluster_client(redis_cluster: RedisClusterServer) -> Iterator[RedisCluster]:
    client = redis_cluster.client()
    yield client
    client.close()


class ClusterHarness:
    """A limiter on the cluster seen synchronously, whichever client style it uses."""

    def __init__(
        self,
        limiter: TokenBucketRateLimiter | AsyncTokenBucketRateLimiter,
        run: Callable[[Any], Any],
    ) -> None:
        self.limiter = limiter
        self.run = run

    def allow(self, identity: str, cost: float = 1) -> Decision:
        return self.run(self.limiter.allow_request(identity, cost))  # type: ignore[no-any-return]

    def peek(self, identity: str) -> Decision:
        return self.run(self.limiter.peek(identity))  # type: ignore[no-any-return]

    def reset(self, identity: str) -> None:
        self.run(self.limiter.reset(identity))


def _same(value: Any) -> Any:
    return value


@pytest.fixture(params=["cluster", "async-cluster"])
def make_cluster_limiter(
    request: pytest.FixtureRequest,
    redis_cluster: RedisClusterServer,
    key_prefix: str,
    clock: Callable[[], float],
) -> Iterator[Callable[..., ClusterHarness]]:
    """``make(config, **limiter_options)``: a limiter over RedisStore or AsyncRedisStore."""
    loop = asyncio.new_event_loop()
    cleanups: list[Callable[[], Any]] = []

    def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
        return loop.run_until_complete(coro)

    def make(config: RateLimitConfig, **options: Any) -> ClusterHarness:
        options.setdefault("key_prefix", key_prefix)
        options.setdefault("on_store_error", "raise")
        if request.param == "cluster":
            client = redis_cluster.client()
            cleanups.append(client.close)
            store = RedisStore(client, clock=clock)
            return ClusterHarness(TokenBucketRateLimiter(config, store, **options), _same)
        aclient = redis_cluster.async_client()
        cleanups.append(lambda: run_async(aclient.aclose()))
        astore = AsyncRedisStore(aclient, clock=clock)
        return ClusterHarness(AsyncTokenBucketRateLimiter(config, astore, **options), run_async)

    yield make
    for cleanup in reversed(cleanups):
        cleanup()
    loop.close()
