"""Each library under test behind one shape: ``decide(identity) -> admitted``.

Every adapter is configured to the closest equivalent of one token bucket of
``capacity`` tokens refilled over ``period`` seconds, on process memory or on the
bench Redis. Nothing here tunes a peer beyond what its documentation offers a user;
where a default would make a workload meaningless (an LRU of 1,024 or 300 entries
against 10,000 keys) it is raised to this project's default of 100,000.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .contract import MAX_KEYS, ADecide, Decide, Quota
from .django_peers import django_ratelimit_peer, drf_peer


@dataclass(frozen=True)
class PeerSpec:
    """One library and strategy; ``sync``/``async_`` build a decider for a backend."""

    name: str
    sync: Callable[[str, str, Quota], Decide]
    async_: Callable[[str, str, Quota], ADecide] | None = None


# ---- this project ---------------------------------------------------------------


def _ours(backend: str, url: str, quota: Quota) -> Decide:
    import redis

    from ratelimit_app.core import MemoryStore, RateLimitConfig, RedisStore, TokenBucketRateLimiter

    config = RateLimitConfig(capacity=quota.capacity, refill_rate=quota.per_second)
    store: Any = RedisStore(redis.Redis.from_url(url)) if backend == "redis" else MemoryStore()
    limiter = TokenBucketRateLimiter(config, store, name="bench", key_prefix="ours")
    return lambda identity: limiter.allow_request(identity).allowed


def _ours_async(backend: str, url: str, quota: Quota) -> ADecide:
    import redis.asyncio

    from ratelimit_app.core import (
        AsyncMemoryStore,
        AsyncRedisStore,
        AsyncTokenBucketRateLimiter,
        RateLimitConfig,
    )

    config = RateLimitConfig(capacity=quota.capacity, refill_rate=quota.per_second)
    store: Any = (
        AsyncRedisStore(redis.asyncio.Redis.from_url(url))
        if backend == "redis"
        else AsyncMemoryStore()
    )
    limiter = AsyncTokenBucketRateLimiter(config, store, name="bench", key_prefix="ours")

    async def decide(identity: str) -> bool:
        return (await limiter.allow_request(identity)).allowed

    return decide


# ---- limits (alisaifee): moving window and sliding window counter -----------------


def _limits_item(quota: Quota) -> Any:
    from limits import RateLimitItemPerSecond

    return RateLimitItemPerSecond(quota.capacity, quota.period)


def _limits(strategy: str) -> Callable[[str, str, Quota], Decide]:
    def build(backend: str, url: str, quota: Quota) -> Decide:
        from limits import strategies
        from limits.storage import storage_from_string

        storage = storage_from_string(url if backend == "redis" else "memory://")
        limiter = getattr(strategies, strategy)(storage)
        item = _limits_item(quota)
        return lambda identity: bool(limiter.hit(item, "bench", identity))

    return build


def _limits_async(strategy: str) -> Callable[[str, str, Quota], ADecide]:
    def build(backend: str, url: str, quota: Quota) -> ADecide:
        from limits.aio import strategies
        from limits.storage import storage_from_string

        if backend == "redis":
            uri = "async+" + url
            storage = storage_from_string(uri, implementation="redispy")
        else:
            storage = storage_from_string("async+memory://")
        limiter = getattr(strategies, strategy)(storage)
        item = _limits_item(quota)

        async def decide(identity: str) -> bool:
            return bool(await limiter.hit(item, "bench", identity))

        return decide

    return build


# ---- throttled-py: token bucket -----------------------------------------------------


def _throttled_limiter(module: Any, backend: str, url: str, quota: Quota) -> Any:
    """``module`` is ``throttled`` or ``throttled.asyncio``: the same names, sync or async."""
    store = (
        module.RedisStore(server=url)
        if backend == "redis"
        else module.MemoryStore(options={"MAX_SIZE": MAX_KEYS})
    )
    rate = module.per_duration(timedelta(seconds=quota.period), quota.capacity, quota.capacity)
    return module.Throttled(using="token_bucket", quota=rate, store=store)


def _throttled(backend: str, url: str, quota: Quota) -> Decide:
    import throttled

    limiter = _throttled_limiter(throttled, backend, url, quota)
    return lambda identity: not limiter.limit(identity).limited


def _throttled_async(backend: str, url: str, quota: Quota) -> ADecide:
    from throttled import asyncio as tasync

    limiter = _throttled_limiter(tasync, backend, url, quota)

    async def decide(identity: str) -> bool:
        return not (await limiter.limit(identity)).limited

    return decide


# ---- pyrate-limiter v4: TokenBucket over StateBucket, one bucket per key ------------


def _pyrate_limiter(backend: str, url: str, quota: Quota, client: Any) -> Any:
    """A ``BucketFactory`` routing each name to its own ``StateBucket`` (the library's
    documented way to limit per key; its ``SingleBucketFactory`` shares one bucket)."""
    import pyrate_limiter as pr

    rate = pr.Rate(quota.capacity, pr.Duration.SECOND * quota.period)

    class PerKeyFactory(pr.BucketFactory):
        def __init__(self) -> None:
            self.buckets: dict[str, pr.StateBucket] = {}

        def bucket_for(self, name: str) -> pr.StateBucket:
            bucket = self.buckets.get(name)
            if bucket is None:
                store = (
                    None if client is None else pr.RedisStateStore(client, key=f"pyrate:{name}")
                )
                bucket = pr.StateBucket([rate], algorithm=pr.TokenBucket(), store=store)
                self.buckets[name] = bucket
            return bucket

        def wrap_item(self, name: str, weight: int = 1) -> pr.RateItem:
            return pr.RateItem(name, self.bucket_for(name).now(), weight=weight)

        def get(self, item: pr.RateItem) -> pr.StateBucket:
            return self.bucket_for(item.name)

    return pr.Limiter(PerKeyFactory())


def _pyrate(backend: str, url: str, quota: Quota) -> Decide:
    import redis

    client = redis.Redis.from_url(url) if backend == "redis" else None
    limiter = _pyrate_limiter(backend, url, quota, client)
    return lambda identity: bool(limiter.try_acquire(identity, blocking=False))


def _pyrate_async(backend: str, url: str, quota: Quota) -> ADecide:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url) if backend == "redis" else None
    limiter = _pyrate_limiter(backend, url, quota, client)

    async def decide(identity: str) -> bool:
        return bool(await limiter.try_acquire_async(identity, blocking=False))

    return decide


PEERS: tuple[PeerSpec, ...] = (
    PeerSpec("ratelimit_app token bucket", _ours, _ours_async),
    PeerSpec(
        "limits moving window",
        _limits("MovingWindowRateLimiter"),
        _limits_async("MovingWindowRateLimiter"),
    ),
    PeerSpec(
        "limits sliding window counter",
        _limits("SlidingWindowCounterRateLimiter"),
        _limits_async("SlidingWindowCounterRateLimiter"),
    ),
    PeerSpec("throttled-py token bucket", _throttled, _throttled_async),
    PeerSpec("pyrate-limiter token bucket", _pyrate, _pyrate_async),
    PeerSpec("DRF SimpleRateThrottle", drf_peer),
    PeerSpec("django-ratelimit", django_ratelimit_peer),
)
BY_NAME = {spec.name: spec for spec in PEERS}
OURS = PEERS[0].name


def build(name: str, backend: str, url: str, quota: Quota) -> Decide:
    return BY_NAME[name].sync(backend, url, quota)


def build_async(name: str, backend: str, url: str, quota: Quota) -> ADecide | None:
    """Call inside the running loop: async clients bind to the loop that first uses them."""
    asyncio.get_running_loop()
    factory = BY_NAME[name].async_
    return None if factory is None else factory(backend, url, quota)
