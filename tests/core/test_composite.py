"""Composite policies: several buckets per request, consumed from all or from none."""

from __future__ import annotations

import pytest
import redis
from redis.crc import key_slot

from ratelimit_app.core import (
    ConfigError,
    RateLimitConfig,
    RedisStore,
    TokenBucketRateLimiter,
    parse_settings,
)
from tests.conftest import ManualClock
from tests.core.conftest import STORES
from tests.core.test_behaviour import StoreSuite
from tests.core.test_concurrency import hammer

BURST = RateLimitConfig(capacity=3, refill_rate=1.0)  # 3 at once, 1 per second
HOURLY = RateLimitConfig(capacity=5, refill_rate=0.01)  # 5, then slowly


class CompositeSuite(StoreSuite):
    """Composite policies on every store (run on the Django cache stores too, by
    ``tests/app/test_cache_store.py``)."""

    def test_every_bucket_must_admit_and_a_denial_consumes_nowhere(
        self, make_limiter, clock: ManualClock
    ) -> None:
        lim = make_limiter([BURST, HOURLY])
        first = lim.allow("c", 3)
        assert first.allowed
        # reported: the bucket that holds the next such request back longest (hourly: 100 s)
        assert (first.limit, first.remaining, first.next_after) == (5.0, 2.0, 100.0)
        assert not lim.allow("c", 1)  # burst empty
        clock.advance(3)  # burst full again; hourly holds 2 + 0.03
        denied = lim.allow("c", 3)
        assert not denied.allowed
        assert denied.limit == 5.0 and denied.remaining == pytest.approx(2.03)
        assert denied.retry_after == pytest.approx((3 - 2.03) / 0.01)
        ok = lim.allow("c", 2)  # nothing was consumed by the denial: burst still holds 3
        assert ok.allowed
        assert lim.peek("c").remaining == pytest.approx(0.03)

    def test_cost_is_bounded_by_the_smallest_bucket(self, make_limiter) -> None:
        lim = make_limiter([HOURLY, BURST])
        with pytest.raises(ConfigError, match="exceeds capacity 3"):
            lim.allow("d", 4)

    def test_reset_empties_every_bucket(self, make_limiter) -> None:
        lim = make_limiter([BURST, HOURLY])
        lim.allow("e", 3)
        lim.reset("e")
        assert lim.allow("e", 3).allowed


class TestCompositeBehaviour(CompositeSuite):
    STORE_KINDS = STORES


@pytest.mark.parametrize("store_kind", ["redis", "async-redis"])
def test_composite_keys_share_one_slot_and_expire_per_bucket(make_limiter) -> None:
    lim = make_limiter([BURST, HOURLY], use_clock=None)
    lim.allow("f")
    keys = lim.limiter.keys_for("f")
    assert len({key_slot(k.encode()) for k in keys}) == 1
    burst, hourly = (lim.raw.ttl(k) for k in keys)  # each lives until its bucket is full
    assert 0 <= burst <= 1
    assert 99 <= hourly <= 100


def test_threads_on_redis_admit_exactly_the_smallest_capacity(
    redis_url: str, key_prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url, max_connections=32)
    small = RateLimitConfig(capacity=100, refill_rate=1e-9)
    large = RateLimitConfig(capacity=150, refill_rate=1e-9)
    limiter = TokenBucketRateLimiter(
        [large, small], RedisStore(client), key_prefix=key_prefix, on_store_error="raise"
    )
    try:
        assert hammer(limiter, 32, "shared") == 100
        tokens = [float(client.get(k).split()[0]) for k in limiter.keys_for("shared")]
        assert tokens == pytest.approx([50.0, 0.0], abs=1e-6)  # the refill is negligible
    finally:
        client.close()


def test_settings_accept_buckets_and_name_errors() -> None:
    settings = parse_settings(
        {"POLICIES": {"api": {"buckets": [
            {"capacity": 10, "refill_rate": 10}, {"capacity": 1000, "refill_rate": 0.3}
        ], "cost": 2}}}
    )  # fmt: skip
    policy = settings.policy("api")
    assert policy.configs == (RateLimitConfig(10, 10), RateLimitConfig(1000, 0.3))
    assert policy.smallest == RateLimitConfig(10, 10) and policy.cost == 2
    bad = [
        ({"buckets": []}, "empty"),
        ({"buckets": {"capacity": 1}}, "must be a list"),
        ({"buckets": [{"capacity": 1, "refill_rate": 0}]}, r"\['buckets'\]\[0\]: refill_rate"),
        ({"buckets": [{"capacity": 2, "refill_rate": 1}], "cost": 3}, "exceeds capacity"),
        ({"buckets": [{"capacity": 2, "refill_rate": 1}], "capacity": 3}, "beside 'buckets'"),
    ]
    for raw, message in bad:
        with pytest.raises(ConfigError, match=message):
            parse_settings({"POLICIES": {"api": raw}})


def test_a_store_without_composite_support_is_refused_up_front() -> None:
    class OneBucketStore:
        def take(self, key, config, cost): ...
        def peek(self, key, config): ...
        def reset(self, key): ...

    with pytest.raises(ConfigError, match="several buckets"):
        TokenBucketRateLimiter([BURST, HOURLY], OneBucketStore())
