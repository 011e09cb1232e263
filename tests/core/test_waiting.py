"""``acquire``: waiting for tokens sleeps exactly what the arithmetic says, on every store.

The injected-clock tests record each requested sleep and move the manual clock by it;
one real-clock test proves the waits are never early.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from ratelimit_app.core import (
    AsyncTokenBucketRateLimiter,
    ConfigError,
    MemoryStore,
    RateLimitConfig,
    RateLimitTimeout,
    TokenBucketRateLimiter,
)
from tests.conftest import ManualClock

TEN_PER_SECOND = RateLimitConfig(capacity=5, refill_rate=10.0)


def _sleeper(limiter: Any, clock: ManualClock, slept: list[float]) -> Any:
    """A sleep that moves the manual clock, in the limiter's own flavour."""

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    async def asleep(seconds: float) -> None:
        sleep(seconds)

    return asleep if isinstance(limiter, AsyncTokenBucketRateLimiter) else sleep


def test_twenty_acquires_sleep_exactly_the_refill_of_fifteen(
    make_limiter, clock: ManualClock
) -> None:
    lim = make_limiter(TEN_PER_SECOND)
    slept: list[float] = []
    sleep = _sleeper(lim.limiter, clock, slept)
    decisions = [lim.run(lim.limiter.acquire("outbound", sleep=sleep)) for _ in range(20)]
    assert all(decision.allowed for decision in decisions)
    # five from the full bucket, then one token every 0.1 s: fifteen sleeps of 0.1 s
    assert slept == pytest.approx([0.1] * 15, abs=2e-6)
    assert sum(slept) == pytest.approx(1.5, abs=1e-4)


def test_a_heavier_request_sleeps_for_its_whole_cost(make_limiter, clock) -> None:
    lim = make_limiter(TEN_PER_SECOND)
    slept: list[float] = []
    lim.allow("outbound", 4)  # 1 token left
    lim.run(lim.limiter.acquire("outbound", 3, sleep=_sleeper(lim.limiter, clock, slept)))
    assert slept == pytest.approx([0.2], abs=2e-6)  # 2 missing tokens at 10/s


def test_timeout_raises_before_sleeping_in_vain(make_limiter, clock: ManualClock) -> None:
    lim = make_limiter(TEN_PER_SECOND)
    slept: list[float] = []
    sleep = _sleeper(lim.limiter, clock, slept)
    lim.allow("outbound", 5)
    with pytest.raises(RateLimitTimeout) as raised:
        lim.run(lim.limiter.acquire("outbound", 5, timeout=0.4, sleep=sleep))
    assert slept == []  # 0.5 s needed, 0.4 s allowed: no sleep at all
    assert raised.value.decision.retry_after == pytest.approx(0.5)
    lim.run(lim.limiter.acquire("outbound", 1, timeout=0.11, sleep=sleep))  # 0.1 s: enough
    assert slept == pytest.approx([0.1], abs=2e-6)


def test_timeout_must_be_a_number_of_seconds(make_limiter) -> None:
    lim = make_limiter(TEN_PER_SECOND)
    for bad in (-1, float("nan"), "1"):
        with pytest.raises(ConfigError, match="timeout"):
            lim.run(lim.limiter.acquire("outbound", timeout=bad))


def test_context_manager_and_decorator_forms(clock: ManualClock) -> None:
    limiter = TokenBucketRateLimiter(TEN_PER_SECOND, MemoryStore(clock=clock))
    calls: list[int] = []

    @limiter.acquiring("api", cost=2)
    def call(n: int) -> int:
        calls.append(n)
        return n

    assert [call(1), call(2)] == [1, 2]
    with limiter.acquiring("api") as decision:
        assert decision.allowed and decision.remaining == pytest.approx(0.0)
    with pytest.raises(RateLimitTimeout):
        with limiter.acquiring("api", timeout=0):
            pytest.fail("entered without tokens")
    assert calls == [1, 2]


async def test_async_context_manager_and_decorator_forms() -> None:
    from ratelimit_app.core import AsyncMemoryStore

    limiter = AsyncTokenBucketRateLimiter(RateLimitConfig(2, 1e-6), AsyncMemoryStore())

    @limiter.acquiring("api")
    async def call() -> str:
        return "called"

    assert await call() == "called"
    async with limiter.acquiring("api") as decision:
        assert decision.remaining == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(RateLimitTimeout):
        async with limiter.acquiring("api", timeout=1):
            pytest.fail("entered without tokens")


def test_real_clock_waits_are_never_early(make_limiter) -> None:
    """Twenty acquires at 10/s from a bucket of 5 take at least 1.5 s and exactly fifteen
    real sleeps: a wait that ended early would be denied again and sleep once more."""
    lim = make_limiter(TEN_PER_SECOND, use_clock=None)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    async def asleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(seconds)

    chosen = asleep if isinstance(lim.limiter, AsyncTokenBucketRateLimiter) else sleep
    started = time.monotonic()
    decisions = [lim.run(lim.limiter.acquire("real", sleep=chosen)) for _ in range(20)]
    elapsed = time.monotonic() - started
    assert all(decision.allowed for decision in decisions)
    assert len(slept) == 15
    assert elapsed >= 1.5 - 0.01  # at most the clocks' resolution below the arithmetic
