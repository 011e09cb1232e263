"""``limiter.refund``: tokens an admitted request took go back, atomically, never above
capacity, on every bucket of a composite policy, on every store; and under real
concurrency (threads and OS processes mixing takes and refunds on one key) the bucket
ends with exactly the tokens the arithmetic says.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from ratelimit_app.core import (
    MemoryStore,
    RateLimitConfig,
    RedisStore,
    StoreFailureHandler,
    TokenBucketRateLimiter,
)
from ratelimit_app.core.events import Event, hub
from ratelimit_app.testing import free_port
from tests.core.conftest import Harness

SLOW = RateLimitConfig(capacity=5, refill_rate=1e-9)
BIG = RateLimitConfig(capacity=100, refill_rate=1e-9)
SMALL = RateLimitConfig(capacity=60, refill_rate=1e-9)
ROUNDS = 12  # takes per thread


def refund(lim: Harness, identity: str, cost: float = 1) -> bool:
    return lim.run(lim.limiter.refund(identity, cost))  # type: ignore[no-any-return]


def test_a_refund_gives_back_exactly_what_was_taken(make_limiter) -> None:
    lim: Harness = make_limiter(SLOW, shed_denials=False)
    assert [lim.allow("c", 2).allowed for _ in range(3)] == [True, True, False]
    assert refund(lim, "c", 2)
    assert [lim.allow("c", 2).allowed for _ in range(2)] == [True, False]
    assert lim.peek("c").remaining == pytest.approx(1.0, abs=1e-6)


def test_a_refund_never_fills_a_bucket_above_capacity(make_limiter) -> None:
    lim: Harness = make_limiter(SLOW, shed_denials=False)
    lim.allow("c")
    assert refund(lim, "c", 5) and refund(lim, "c", 5)
    assert lim.peek("c").remaining == pytest.approx(5.0)
    assert [lim.allow("c").allowed for _ in range(6)] == [True] * 5 + [False]


def test_a_composite_policy_refunds_every_bucket(make_limiter) -> None:
    lim: Harness = make_limiter([BIG, SLOW], shed_denials=False)
    for _ in range(5):
        assert lim.allow("c").allowed
    assert not lim.allow("c").allowed  # the small bucket holds it back
    assert refund(lim, "c", 2)
    assert [lim.allow("c").allowed for _ in range(3)] == [True, True, False]
    big, small = (lim.run(lim.limiter.store.get_state(key)) for key in lim.limiter.keys_for("c"))
    assert (big.tokens, small.tokens) == (pytest.approx(95.0), pytest.approx(0.0, abs=1e-6))


def test_a_refund_clears_this_process_s_memory_of_a_denial(make_limiter) -> None:
    """With flood shedding on, a remembered denial must not outlive the refund that
    makes the bucket able to admit again."""
    lim: Harness = make_limiter(SLOW, shed_denials=True)
    while lim.allow("c").allowed:
        pass
    assert not lim.allow("c").allowed  # remembered now
    assert refund(lim, "c")
    assert lim.allow("c").allowed


def test_a_refund_is_an_event() -> None:
    seen: list[Event] = []
    limiter = TokenBucketRateLimiter(SLOW, MemoryStore())
    hub.subscribe(seen.append)
    limiter.allow_request("c", 2)
    limiter.refund("c", 2)
    assert [(e.outcome, e.cost) for e in seen] == [("allowed", 2.0), ("refunded", 2.0)]


@pytest.mark.parametrize(("mode", "refunded"), [("fallback", True), ("allow", False)])
def test_a_failing_store_never_raises_and_falls_back_where_the_tokens_were_taken(
    mode: str, refunded: bool
) -> None:
    """Under "fallback" the fallback memory took the tokens, so it gets them back;
    otherwise nothing was taken anywhere. Never an exception (the response is out)."""
    down = redis.Redis(port=free_port(), socket_timeout=0.2, socket_connect_timeout=0.2)
    failure = StoreFailureHandler(mode, retry_interval=60)
    limiter = TokenBucketRateLimiter(SLOW, RedisStore(down), on_store_error=failure)
    assert limiter.allow_request("c", 3).allowed
    assert limiter.refund("c", 3) is refunded
    if refunded:
        assert failure.fallback_store.peek_all(limiter.keys_for("c"), [SLOW]).remaining == 5.0


# --- Exactness under concurrency ------------------------------------------------------------


def mix(limiter: TokenBucketRateLimiter, threads: int, identity: str) -> tuple[int, int]:
    """``threads`` threads start together; each takes ROUNDS times and refunds every
    second token it got. Returns (admitted, refunded)."""
    barrier = threading.Barrier(threads)

    def worker() -> tuple[int, int]:
        barrier.wait()
        admitted = refunded = 0
        for _ in range(ROUNDS):
            if limiter.allow_request(identity).allowed:
                admitted += 1
                if admitted % 2 == 0:
                    refunded += limiter.refund(identity)
        return admitted, refunded

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda _: worker(), range(threads)))
    return sum(a for a, _ in results), sum(r for _, r in results)


def _stored(limiter: TokenBucketRateLimiter, identity: str) -> list[float]:
    store: Any = limiter.store
    return [store.get_state(key).tokens for key in limiter.keys_for(identity)]


def process_worker(url: str, prefix: str, threads: int) -> tuple[int, int]:
    client = redis.Redis.from_url(url, max_connections=threads)
    try:
        limiter = TokenBucketRateLimiter(
            [BIG, SMALL], RedisStore(client), key_prefix=prefix, on_store_error="raise"
        )
        return mix(limiter, threads, "shared")
    finally:
        client.close()


def _expect(stored: list[float], admitted: int, refunded: int) -> None:
    """Each refund follows its own take, so no bucket ever reaches its capacity again:
    the arithmetic is plain subtraction and addition."""
    assert admitted - refunded <= SMALL.capacity
    assert stored == [
        pytest.approx(BIG.capacity - admitted + refunded, abs=1e-4),
        pytest.approx(SMALL.capacity - admitted + refunded, abs=1e-4),
    ]


def test_threads_mixing_takes_and_refunds_on_memory_end_exact(key_prefix: str) -> None:
    limiter = TokenBucketRateLimiter([BIG, SMALL], MemoryStore(), key_prefix=key_prefix)
    admitted, refunded = mix(limiter, 16, "shared")
    assert admitted > SMALL.capacity  # refunds let more through than the capacity
    _expect(_stored(limiter, "shared"), admitted, refunded)


@pytest.mark.slow
def test_4_processes_x_16_threads_mixing_takes_and_refunds_on_redis_end_exact(
    redis_url: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(process_worker, [(redis_url, key_prefix, 16)] * 4)
    admitted, refunded = sum(a for a, _ in results), sum(r for _, r in results)
    assert admitted > SMALL.capacity and len(results) == 4
    limiter = TokenBucketRateLimiter([BIG, SMALL], RedisStore(redis_client), key_prefix=key_prefix)
    _expect(_stored(limiter, "shared"), admitted, refunded)
