"""Operator changes (grant, drain, refund): one atomic step, the same arithmetic on
every store as the pure ``bucket.adjust``."""

from __future__ import annotations

import random

import pytest

from ratelimit_app.core import RateLimitConfig
from ratelimit_app.core.bucket import BucketState, adjust, adjust_all
from tests.conftest import ManualClock
from tests.core.conftest import Harness

C5 = RateLimitConfig(capacity=5, refill_rate=0.5)
SLOW = RateLimitConfig(capacity=5, refill_rate=1e-6)


def adjust_on(lim: Harness, identity: str, add: float = 0.0, empty: bool = False) -> list[float]:
    limiter = lim.limiter
    keys = limiter.keys_for(identity)
    return lim.run(limiter.store.adjust(keys, limiter.configs, add, empty=empty))  # type: ignore[no-any-return]


def test_pure_adjust_refills_then_adds_capped_or_empties() -> None:
    state = BucketState(1.0, 100.0)
    assert adjust(state, C5, 102.0, 2, False) == BucketState(4.0, 102.0)  # 1 + 1 refilled + 2
    assert adjust(state, C5, 102.0, 99, False) == BucketState(5.0, 102.0)
    assert adjust(state, C5, 102.0, -99, False) == BucketState(0.0, 102.0)
    assert adjust(None, C5, 7.0, 0, True) == BucketState(0.0, 7.0)  # never seen: full, drained
    assert adjust_all([state, None], [C5, SLOW], 102.0, 1, False) == [
        BucketState(3.0, 102.0), BucketState(5.0, 102.0),
    ]  # fmt: skip


def test_grant_admits_exactly_that_many_more(make_limiter) -> None:
    lim: Harness = make_limiter(SLOW, shed_denials=False)
    assert [lim.allow("c").allowed for _ in range(6)] == [True] * 5 + [False]
    assert adjust_on(lim, "c", 2) == [pytest.approx(2.0)]
    assert [lim.allow("c").allowed for _ in range(3)] == [True, True, False]


def test_grant_is_capped_at_capacity_and_drain_blocks(make_limiter) -> None:
    lim: Harness = make_limiter(SLOW, shed_denials=False)
    lim.allow("c")
    assert adjust_on(lim, "c", 1000) == [5.0]
    assert adjust_on(lim, "c", empty=True) == [0.0]
    assert not lim.allow("c").allowed
    assert lim.peek("c").remaining == pytest.approx(0.0, abs=1e-3)


def test_composite_buckets_change_together(make_limiter) -> None:
    lim: Harness = make_limiter([SLOW, RateLimitConfig(3, 1e-6)], shed_denials=False)
    for _ in range(3):
        lim.allow("c")
    assert adjust_on(lim, "c", 1) == [pytest.approx(3.0), pytest.approx(1.0)]
    assert [lim.allow("c").allowed for _ in range(2)] == [True, False]


def test_random_traces_match_the_pure_function(make_limiter, clock: ManualClock) -> None:
    lim: Harness = make_limiter(C5, shed_denials=False)
    rng = random.Random(13)
    state: BucketState | None = None
    for _ in range(60):
        clock.advance(rng.choice([0.0, 0.3, 1.7]))
        if rng.random() < 0.5:
            decision = lim.allow("c", rng.choice([1, 2]))
            state = BucketState(decision.remaining, clock.now)
            continue
        add, empty = rng.choice([1.0, 2.5, -1.0]), rng.random() < 0.2
        state = adjust(state, C5, clock.now, add, empty)
        assert adjust_on(lim, "c", add, empty) == [pytest.approx(state.tokens, abs=1e-9)]
