"""One behaviour suite, run on every store (see ``make_limiter``)."""

from __future__ import annotations

import pytest

from ratelimit_app.core import ConfigError, RateLimitConfig
from tests.conftest import ManualClock

C5R1 = RateLimitConfig(capacity=5, refill_rate=1.0)


def test_new_bucket_is_full(make_limiter) -> None:
    lim = make_limiter(C5R1)
    d = lim.allow("alice")
    assert d.allowed and bool(d)
    assert (d.limit, d.remaining, d.retry_after, d.reset_after) == (5.0, 4.0, 0.0, 1.0)


def test_weighted_costs_and_denial_consumes_nothing(make_limiter) -> None:
    lim = make_limiter(C5R1)
    assert lim.allow("bob", 3).remaining == 2.0
    denied = lim.allow("bob", 3)
    assert not denied.allowed
    assert denied.remaining == 2.0
    assert denied.retry_after == 1.0
    assert denied.reset_after == 3.0
    assert lim.allow("bob", 2).remaining == 0.0
    assert not lim.allow("bob", 1)


def test_refill_and_cap(make_limiter, clock: ManualClock) -> None:
    lim = make_limiter(RateLimitConfig(capacity=10, refill_rate=2.0))
    assert lim.allow("c", 10).remaining == 0.0
    clock.advance(1.25)
    assert lim.allow("c", 0).remaining == 2.5
    clock.advance(1000)
    d = lim.allow("c", 1)
    assert d.remaining == 9.0  # capped at capacity before the cost is taken


def test_retry_after_and_reset_after_to_the_float(make_limiter, clock: ManualClock) -> None:
    lim = make_limiter(RateLimitConfig(capacity=3, refill_rate=0.7))
    lim.allow("d", 3)
    start = clock.now
    clock.advance(0.1)
    d = lim.allow("d", 2)
    tokens = (clock.now - start) * 0.7
    assert not d.allowed
    assert d.remaining == tokens
    assert d.retry_after == (2 - tokens) / 0.7
    assert d.reset_after == (3 - tokens) / 0.7
    clock.advance(d.retry_after)
    assert lim.allow("d", 2).allowed


def test_peek_reports_without_consuming(make_limiter) -> None:
    lim = make_limiter(C5R1)
    assert lim.peek("e").remaining == 5.0
    lim.allow("e", 2)
    for _ in range(3):
        p = lim.peek("e")
        assert (p.allowed, p.remaining, p.retry_after) == (True, 3.0, 0.0)
    assert lim.allow("e", 0).remaining == 3.0


def test_reset_refills(make_limiter) -> None:
    lim = make_limiter(C5R1)
    lim.allow("f", 5)
    assert not lim.allow("f")
    lim.reset("f")
    assert lim.allow("f").remaining == 4.0


def test_identities_and_policies_are_separate(make_limiter) -> None:
    a = make_limiter(C5R1, name="a")
    b = make_limiter(C5R1, name="b")
    a.allow("g", 5)
    assert not a.allow("g")
    assert a.allow("h").allowed
    assert b.allow("g").allowed


def test_clock_stepping_backwards_neither_refills_nor_drains(
    make_limiter, clock: ManualClock
) -> None:
    lim = make_limiter(C5R1)
    lim.allow("i", 4)
    clock.advance(-50)
    d = lim.allow("i", 0)
    assert d.remaining == 1.0
    clock.advance(50.5)  # back to the original time + 0.5: the interval is not credited twice
    assert lim.allow("i", 0).remaining == 1.5


@pytest.mark.parametrize("store_kind", ["redis", "async-redis"])
def test_redis_key_has_ttl_of_full_refill(make_limiter) -> None:
    lim = make_limiter(RateLimitConfig(capacity=10, refill_rate=0.25))
    lim.allow("j")
    key = lim.limiter.key_for("j")
    assert 39 <= lim.raw.ttl(key) <= 40
    tokens, _updated = lim.raw.get(key).split()
    assert float(tokens) == 9.0


@pytest.mark.parametrize("cost", [-1, float("nan"), float("inf"), 6, "1", True, None])
def test_bad_cost_is_a_clear_error(make_limiter, cost) -> None:
    lim = make_limiter(C5R1)
    with pytest.raises(ConfigError, match="cost"):
        lim.allow("k", cost)


@pytest.mark.parametrize(
    "identity", ["a\nb", "x" * 10_000, "名前", "a b", "*", "rl:other:key", "", "#deadbeef"]
)
def test_odd_identities_get_safe_keys_and_work(
    make_limiter, key_prefix: str, identity: str
) -> None:
    lim = make_limiter(C5R1)
    key = lim.limiter.key_for(identity)
    assert len(key) < 120 and key.isascii() and key.isprintable() and " " not in key
    # the identity is the last segment: ':' inside it (IPv6) cannot reach prefix or policy
    assert key.startswith(f"{key_prefix}:default:")
    assert lim.allow(identity, 5).allowed
    assert not lim.allow(identity).allowed
    assert lim.allow(identity + "-other").allowed
