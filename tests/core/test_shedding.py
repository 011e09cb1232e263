"""Flood shedding: denials proven by the last known state never reach Redis."""

from __future__ import annotations

import redis

from ratelimit_app.core import RateLimitConfig, RedisStore, TokenBucketRateLimiter
from tests.conftest import ManualClock

CONFIG = RateLimitConfig(capacity=5, refill_rate=1.0)


def evalsha_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def test_flood_from_one_key_is_answered_locally(redis_url: str, key_prefix: str) -> None:
    clock = ManualClock()
    client = redis.Redis.from_url(redis_url)
    limiter = TokenBucketRateLimiter(
        CONFIG, RedisStore(client, clock=clock), key_prefix=key_prefix
    )
    try:
        assert limiter.allow_request("flood", 5).allowed
        before = evalsha_calls(client)
        denied = [limiter.allow_request("flood") for _ in range(100)]
        assert not any(denied)
        assert evalsha_calls(client) - before == 1  # the first denial only
        assert denied[-1].retry_after == 1.0
        clock.advance(1.0)  # a token is back: the next request goes to Redis and passes
        assert limiter.allow_request("flood").allowed
        assert evalsha_calls(client) - before == 2
    finally:
        client.close()


def test_a_denial_elsewhere_does_not_block_other_keys_and_reset_forgets(
    redis_url: str, key_prefix: str
) -> None:
    clock = ManualClock()
    client = redis.Redis.from_url(redis_url)
    limiter = TokenBucketRateLimiter(
        CONFIG, RedisStore(client, clock=clock), key_prefix=key_prefix
    )
    try:
        limiter.allow_request("a", 5)
        assert not limiter.allow_request("a")
        assert limiter.allow_request("b").allowed
        limiter.reset("a")
        assert limiter.allow_request("a").allowed
    finally:
        client.close()


def test_bound_counts_only_refill_since_the_request_left(redis_url: str, key_prefix: str) -> None:
    """Another consumer draining the bucket can only make the local bound safer."""
    clock = ManualClock()
    client = redis.Redis.from_url(redis_url)
    store = RedisStore(client, clock=clock)
    ours = TokenBucketRateLimiter(CONFIG, store, key_prefix=key_prefix)
    theirs = TokenBucketRateLimiter(CONFIG, store, key_prefix=key_prefix, shed_denials=False)
    try:
        ours.allow_request("k", 4)
        assert not ours.allow_request("k", 3)  # 1 token left: denial remembered
        clock.advance(2.0)  # 3 tokens by the arithmetic
        assert theirs.allow_request("k", 3).allowed  # someone else takes them
        d = ours.allow_request("k", 3)  # the bound says 3 >= cost: asks Redis, which denies
        assert not d.allowed and d.remaining == 0.0
    finally:
        client.close()


def test_a_remembered_denial_expires_so_a_reset_elsewhere_is_seen(
    redis_url: str, key_prefix: str
) -> None:
    """Another process's reset or grant is invisible here: the memory is trusted for
    ``max_age`` seconds only, whatever the refill rate says."""
    clock = ManualClock()
    client = redis.Redis.from_url(redis_url)
    slow = RateLimitConfig(capacity=5, refill_rate=1e-6)
    store = RedisStore(client, clock=clock)
    ours = TokenBucketRateLimiter(slow, store, key_prefix=key_prefix)
    admin = TokenBucketRateLimiter(slow, store, key_prefix=key_prefix, shed_denials=False)
    try:
        ours.allow_request("k", 5)
        assert not ours.allow_request("k")  # remembered: Redis would say the same for days
        admin.reset("k")
        assert not ours.allow_request("k")  # within max_age: still shed locally
        clock.advance(ours.denials.max_age)  # type: ignore[union-attr]
        assert ours.allow_request("k").allowed
    finally:
        client.close()
