"""Flood shedding: denials proven by the last known state never reach Redis."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
import redis

from ratelimit_app.core import RateLimitConfig, RedisStore, TokenBucketRateLimiter, render_headers
from ratelimit_app.core.bucket import decide
from ratelimit_app.core.shedding import DenialCache
from tests.conftest import ManualClock
from tests.slow_proxy import SlowProxy

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


def test_a_shed_denial_reports_the_wait_from_when_the_reply_came(clock: ManualClock) -> None:
    """The bound that decides counts refill from when the request left; the wait a shed
    denial reports counts only from when the reply came back, so time the request spent
    queued on the way can never make the reported wait early."""
    config = RateLimitConfig(capacity=6, refill_rate=2.0)
    cache = DenialCache(clock=clock, max_age=10.0)  # the bounds, not the memory's expiry
    sent_at = clock()
    clock.advance(0.6)  # queued 0.6 s; the store decided (1.2 tokens) and replied now
    cache.learn("k", decide(config, 6, False, 1.2), sent_at)
    shed = cache.check("k", 6, clock())  # upper bound 1.2 + 0.6 * 2 = 2.4 < 6: denied here
    assert shed is not None and not shed.allowed
    assert (shed.remaining, shed.retry_after) == pytest.approx((1.2, 2.4))  # (6 - 1.2) / 2
    clock.advance(1.0)
    later = cache.check("k", 6, clock())  # upper 4.4 < 6 still; lower 3.2
    assert later is not None
    assert (later.remaining, later.retry_after) == pytest.approx((3.2, 1.4))
    clock.advance(0.8)  # upper bound 6.0: only the store can say
    assert cache.check("k", 6, clock()) is None


def test_a_client_that_obeys_a_shed_denial_is_admitted(redis_url: str, key_prefix: str) -> None:
    """Real clocks, and one request held 0.6 s on its way to Redis by a slow proxy: the
    local denial that follows carries a Retry-After that is enough (it used to say 2 s
    where 2.4 s were needed, and the obedient client was refused again)."""
    where = urlsplit(redis_url)
    config = RateLimitConfig(capacity=6, refill_rate=2.0)
    with SlowProxy(where.hostname or "127.0.0.1", where.port or 6379) as proxy:
        client = redis.Redis(host="127.0.0.1", port=proxy.port)
        limiter = TokenBucketRateLimiter(config, RedisStore(client), key_prefix=key_prefix)
        try:
            assert limiter.allow_request("k", 6).allowed  # empty now, by Redis's clock
            proxy.delay = 0.6
            queued = limiter.allow_request("k", 6)  # decided >= 0.6 s after it left
            proxy.delay = 0.0
            assert not queued.allowed
            sent = proxy.chunks
            shed = limiter.allow_request("k", 6)
            assert not shed.allowed and proxy.chunks == sent  # answered without Redis
            time.sleep(int(render_headers(shed, "default")["Retry-After"]))
            assert limiter.allow_request("k", 6).allowed
        finally:
            client.close()
