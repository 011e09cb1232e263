"""One behaviour suite, written once and run on every store.

``BehaviourSuite`` holds the tests. A subclass names the store kinds it runs them on and
provides the ``make_limiter`` fixture that builds a limiter on a ``store_kind``:
``TestBehaviour`` below runs them on the core stores (``tests/core/conftest.py``), and
``tests/app/test_cache_store.py`` on the Django cache stores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pytest

from ratelimit_app.core import ConfigError, RateLimitConfig
from ratelimit_app.core.config import CLIENT_CLOCK_MIN_TTL
from tests.conftest import ManualClock
from tests.core.conftest import STORES

C5R1 = RateLimitConfig(capacity=5, refill_rate=1.0)


def raw_redis_only(test: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``test`` only on the stores whose keys a raw Redis client reads (``lim.raw``)."""
    test.raw_redis_only = True  # type: ignore[attr-defined]
    return test


class StoreSuite:
    """Tests run once per store kind: ``STORE_KINDS``, or ``RAW_REDIS_KINDS`` for the
    tests marked ``@raw_redis_only``. Not collected itself (no ``Test`` prefix)."""

    STORE_KINDS: ClassVar[Sequence[str]] = ()
    RAW_REDIS_KINDS: ClassVar[Sequence[str]] = ()

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "store_kind" in metafunc.fixturenames:
            raw = getattr(metafunc.function, "raw_redis_only", False)
            metafunc.parametrize("store_kind", self.RAW_REDIS_KINDS if raw else self.STORE_KINDS)


class BehaviourSuite(StoreSuite):
    """What every store must do, seen through ``make_limiter(config, ...) -> Harness``."""

    def test_new_bucket_is_full(self, make_limiter) -> None:
        lim = make_limiter(C5R1)
        d = lim.allow("alice")
        assert d.allowed and bool(d)
        assert (d.limit, d.remaining, d.retry_after, d.reset_after) == (5.0, 4.0, 0.0, 1.0)

    def test_weighted_costs_and_denial_consumes_nothing(self, make_limiter) -> None:
        lim = make_limiter(C5R1)
        assert lim.allow("bob", 3).remaining == 2.0
        denied = lim.allow("bob", 3)
        assert not denied.allowed
        assert denied.remaining == 2.0
        assert denied.retry_after == 1.0
        assert denied.reset_after == 3.0
        assert lim.allow("bob", 2).remaining == 0.0
        assert not lim.allow("bob", 1)

    def test_refill_and_cap(self, make_limiter, clock: ManualClock) -> None:
        lim = make_limiter(RateLimitConfig(capacity=10, refill_rate=2.0))
        assert lim.allow("c", 10).remaining == 0.0
        clock.advance(1.25)
        assert lim.allow("c", 0).remaining == 2.5
        clock.advance(1000)
        d = lim.allow("c", 1)
        assert d.remaining == 9.0  # capped at capacity before the cost is taken

    def test_retry_after_and_reset_after_to_the_float(
        self, make_limiter, clock: ManualClock
    ) -> None:
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

    def test_peek_reports_without_consuming(self, make_limiter) -> None:
        lim = make_limiter(C5R1)
        assert lim.peek("e").remaining == 5.0
        lim.allow("e", 2)
        for _ in range(3):
            p = lim.peek("e")
            assert (p.allowed, p.remaining, p.retry_after) == (True, 3.0, 0.0)
        assert lim.allow("e", 0).remaining == 3.0

    def test_reset_refills(self, make_limiter) -> None:
        lim = make_limiter(C5R1)
        lim.allow("f", 5)
        assert not lim.allow("f")
        lim.reset("f")
        assert lim.allow("f").remaining == 4.0

    def test_identities_and_policies_are_separate(self, make_limiter) -> None:
        a = make_limiter(C5R1, name="a")
        b = make_limiter(C5R1, name="b")
        a.allow("g", 5)
        assert not a.allow("g")
        assert a.allow("h").allowed
        assert b.allow("g").allowed

    def test_clock_stepping_backwards_neither_refills_nor_drains(
        self, make_limiter, clock: ManualClock
    ) -> None:
        lim = make_limiter(C5R1)
        lim.allow("i", 4)
        clock.advance(-50)
        d = lim.allow("i", 0)
        assert d.remaining == 1.0
        clock.advance(50.5)  # back to the original time + 0.5: the interval is not credited twice
        assert lim.allow("i", 0).remaining == 1.5

    @raw_redis_only
    def test_redis_key_lives_until_its_bucket_is_full_again(self, make_limiter) -> None:
        """The limiter's key is used verbatim on the raw client (a Django cache adds no
        KEY_PREFIX or VERSION): it holds the tokens and expires when the bucket would be
        full again, ceil((C - tokens) / R), not after a whole C / R; a denial writes
        nothing, so it neither changes the state nor extends the key's life."""
        lim = make_limiter(RateLimitConfig(capacity=10, refill_rate=0.25), use_clock=None)
        lim.allow("j")
        key = lim.limiter.key_for("j")
        assert 3 <= lim.raw.ttl(key) <= 4  # one token short: 4 s
        tokens, _updated = lim.raw.get(key).split()
        assert 9.0 <= float(tokens) < 9.25  # Redis TIME: a little refill since
        lim.allow("j", 9)
        assert 39 <= lim.raw.ttl(key) <= 40  # empty: a whole refill
        stored = lim.raw.get(key)
        lim.raw.expire(key, 30)
        assert not lim.allow("j", 5).allowed
        assert lim.raw.get(key) == stored
        assert lim.raw.ttl(key) <= 30

    @raw_redis_only
    def test_redis_key_on_a_clock_of_our_own_lives_at_least_an_hour(self, make_limiter) -> None:
        """Redis expires keys on real time; a hand-moved clock need not follow it."""
        lim = make_limiter(RateLimitConfig(capacity=10, refill_rate=0.25))
        lim.allow("k")
        assert 3590 <= lim.raw.ttl(lim.limiter.key_for("k")) <= CLIENT_CLOCK_MIN_TTL

    @pytest.mark.parametrize("cost", [-1, float("nan"), float("inf"), 6, "1", True, None])
    def test_bad_cost_is_a_clear_error(self, make_limiter, cost) -> None:
        lim = make_limiter(C5R1)
        with pytest.raises(ConfigError, match="cost"):
            lim.allow("k", cost)

    @pytest.mark.parametrize(
        "identity", ["a\nb", "x" * 10_000, "名前", "a b", "*", "rl:other:key", "", "#deadbeef"]
    )
    def test_odd_identities_get_safe_keys_and_work(
        self, make_limiter, key_prefix: str, identity: str
    ) -> None:
        lim = make_limiter(C5R1)
        key = lim.limiter.key_for(identity)
        assert len(key) < 120 and key.isascii() and key.isprintable() and " " not in key
        # the identity is the last segment: ':' inside it (IPv6) cannot reach prefix or policy
        assert key.startswith(f"{key_prefix}:default:")
        assert lim.allow(identity, 5).allowed
        assert not lim.allow(identity).allowed
        assert lim.allow(identity + "-other").allowed


class TestBehaviour(BehaviourSuite):
    STORE_KINDS = STORES
    RAW_REDIS_KINDS = ("redis", "async-redis")
