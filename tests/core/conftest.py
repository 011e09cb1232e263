"""The store matrix: every behaviour test runs on each store, sync and async.

A harness gives async limiters the same synchronous face as sync ones, so a behaviour is
written once; each async harness owns its event loop and the client bound to it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from ratelimit_app.core import (
    AsyncMemoryStore,
    AsyncRedisStore,
    AsyncTokenBucketRateLimiter,
    Decision,
    MemoryStore,
    RateLimitConfig,
    RedisStore,
    TokenBucketRateLimiter,
)

STORES = ["memory", "async-memory", "redis", "async-redis"]


class Harness:
    """A limiter seen synchronously, plus the raw client for Redis-side assertions."""

    def __init__(
        self,
        limiter: TokenBucketRateLimiter | AsyncTokenBucketRateLimiter,
        run: Callable[[Any], Any],
        raw: redis.Redis | None,
    ) -> None:
        self.limiter = limiter
        self.run = run
        self.raw = raw

    def allow(self, identity: str, cost: float = 1) -> Decision:
        return self.run(self.limiter.allow_request(identity, cost))  # type: ignore[no-any-return]

    def peek(self, identity: str) -> Decision:
        return self.run(self.limiter.peek(identity))  # type: ignore[no-any-return]

    def reset(self, identity: str) -> None:
        self.run(self.limiter.reset(identity))


def _identity(value: Any) -> Any:
    return value


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_limiter(
    store_kind: str, redis_url: str, key_prefix: str, clock: Callable[[], float]
) -> Iterator[Callable[..., Harness]]:
    """``make_limiter(config, use_clock=..., **limiter_options) -> Harness`` on this store.

    ``use_clock=None`` gives each store its real default clock (monotonic; Redis TIME).
    """
    loop = asyncio.new_event_loop()
    cleanups: list[Callable[[], Any]] = []

    def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
        return loop.run_until_complete(coro)

    def make(config: RateLimitConfig, use_clock: Any = clock, **options: Any) -> Harness:
        options.setdefault("key_prefix", key_prefix)
        raw = redis.Redis.from_url(redis_url)
        cleanups.append(raw.close)
        if store_kind == "memory":
            return Harness(
                TokenBucketRateLimiter(
                    config, MemoryStore(clock=use_clock or time.monotonic), **options
                ),
                _identity, None,
            )  # fmt: skip
        if store_kind == "async-memory":
            store = AsyncMemoryStore(clock=use_clock or time.monotonic)
            return Harness(AsyncTokenBucketRateLimiter(config, store, **options), run_async, None)
        if store_kind == "redis":
            client = redis.Redis.from_url(redis_url)
            cleanups.append(client.close)
            sync = RedisStore(client, clock=use_clock)
            return Harness(TokenBucketRateLimiter(config, sync, **options), _identity, raw)
        aclient = aredis.Redis.from_url(redis_url)
        cleanups.append(lambda: run_async(aclient.aclose()))
        astore = AsyncRedisStore(aclient, clock=use_clock)
        return Harness(AsyncTokenBucketRateLimiter(config, astore, **options), run_async, raw)

    yield make
    for cleanup in reversed(cleanups):
        cleanup()
    loop.close()
