"""Coalesced async decisions are exact: each is what it would be alone, in sending order.

``CoalesceSuite`` is written once; ``TestCoalesce`` runs it on one Redis and
``tests/cluster/test_cluster_coalesce.py`` on the three-master cluster. Each test gets a
``make_store(clock)`` fixture that builds a coalescing ``AsyncRedisStore`` inside the
running event loop; batches are recorded by wrapping the store's coalescer, so a test
can prove that requests really went together. Faults (a Redis killed under a batch in
flight, a cancelled waiter) are at the end, on a private server.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratelimit_app.core import (
    AsyncRedisStore,
    AsyncTokenBucketRateLimiter,
    Decision,
    RateLimitConfig,
    StoreFailureHandler,
)
from ratelimit_app.core.bucket import binding, decide
from ratelimit_app.core.stores.redis import Request
from ratelimit_app.testing import RedisServer
from tests.conftest import ManualClock

MakeStore = Callable[..., AsyncRedisStore]
STILL = 1e-9  # a refill rate at which no token comes back during a test
_fresh = itertools.count()


def record_batches(store: AsyncRedisStore) -> list[int]:
    """Sizes of the calls the store's coalescer makes from now on."""
    sizes: list[int] = []
    send = store._coalescer.send

    async def recorded(requests: list[Request]) -> Any:
        sizes.append(len(requests))
        return await send(requests)

    store._coalescer.send = recorded
    return sizes


async def burst(
    limiter: AsyncTokenBucketRateLimiter, requests: Sequence[tuple[str, float]]
) -> list[Decision]:
    """Every request as its own task, released together; decisions in request order."""
    gate = asyncio.Event()

    async def one(identity: str, cost: float) -> Decision:
        await gate.wait()
        return await limiter.allow_request(identity, cost)

    tasks = [asyncio.create_task(one(identity, cost)) for identity, cost in requests]
    await asyncio.sleep(0)
    gate.set()
    return await asyncio.gather(*tasks)


@asynccontextmanager
async def opened(make_store: MakeStore, clock: ManualClock | None = None) -> AsyncIterator[Any]:
    """A store from ``make_store`` whose client is closed in the loop that used it."""
    store = make_store(clock)
    try:
        yield store
    finally:
        await store.client.aclose()


class Model:
    """Buckets as docs/semantics.md defines them, decided one request after another."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[str, int], tuple[float, float]] = {}

    def decide(self, identity: str, configs: Sequence[RateLimitConfig], cost: float, now: float):
        held = []
        for i, config in enumerate(configs):
            tokens, updated = self.buckets.get((identity, i), (config.capacity, now))
            tokens = min(config.capacity, tokens + max(0.0, now - updated) * config.refill_rate)
            held.append((tokens, max(updated, now)))
        allowed = all(tokens >= cost for tokens, _ in held)
        if allowed:
            for i, (tokens, updated) in enumerate(held):
                self.buckets[identity, i] = (tokens - cost, updated)
        left = [tokens - cost if allowed else tokens for tokens, _ in held]
        return binding([decide(c, cost, allowed, t) for c, t in zip(configs, left, strict=True)])


class CoalesceSuite:
    """Not collected itself (no ``Test`` prefix): subclasses provide ``make_store``."""

    def limiter(
        self, store: AsyncRedisStore, config: Any, prefix: str
    ) -> AsyncTokenBucketRateLimiter:
        return AsyncTokenBucketRateLimiter(
            config, store, key_prefix=prefix, on_store_error="raise", shed_denials=False
        )

    async def test_200_tasks_on_one_key_admit_exactly_100(
        self, make_store: MakeStore, key_prefix: str
    ) -> None:
        async with opened(make_store) as store:
            sizes = record_batches(store)
            limiter = self.limiter(store, RateLimitConfig(100, STILL), key_prefix)
            decisions = await burst(limiter, [("hot", 1)] * 200)
        assert sum(d.allowed for d in decisions) == 100
        assert [d.allowed for d in decisions] == [True] * 100 + [False] * 100
        assert sum(sizes) == 200 and max(sizes) > 1  # they went together
        assert max(sizes) <= store._coalescer.max_batch

    async def test_1000_tasks_over_50_keys_admit_exactly_capacity_each(
        self, make_store: MakeStore, key_prefix: str
    ) -> None:
        requests = [(f"client-{i % 50}", 1.0) for i in range(1000)]
        async with opened(make_store) as store:
            sizes = record_batches(store)
            limiter = self.limiter(store, RateLimitConfig(10, STILL), key_prefix)
            decisions = await burst(limiter, requests)
        admitted: dict[str, int] = {}
        for (identity, _), decision in zip(requests, decisions, strict=True):
            admitted[identity] = admitted.get(identity, 0) + decision.allowed
        assert admitted == {f"client-{i}": 10 for i in range(50)}
        assert len(sizes) < 1000

    async def test_mixed_costs_and_composite_policies_decide_in_sending_order(
        self, make_store: MakeStore, key_prefix: str, clock: ManualClock
    ) -> None:
        """The outcome of a burst is the model's when it decides the requests in the
        order they were sent, one after another."""
        configs = [RateLimitConfig(10, STILL), RateLimitConfig(25, STILL)]
        requests = [(f"c{i % 7}", float(i % 4)) for i in range(300)]
        async with opened(make_store, clock) as store:
            decisions = await burst(self.limiter(store, configs, key_prefix), requests)
        model = Model()
        expected = [model.decide(who, configs, cost, clock.now) for who, cost in requests]
        assert [(d.allowed, d.remaining) for d in decisions] == [
            (d.allowed, d.remaining) for d in expected
        ]

    @settings(
        max_examples=25,
        deadline=None,
        # a loaded machine slows generation of these nested traces, not the test's logic;
        # the suite is run by one class per store, each its own executor by design
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        composite=st.booleans(),
        bursts=st.lists(
            st.tuples(
                st.sampled_from([0.0, 0.5, 2.0, -1.0]),
                st.lists(
                    st.tuples(st.sampled_from("abc"), st.sampled_from([0.0, 1.0, 2.5, 3.0])),
                    min_size=1,
                    max_size=40,
                ),
            ),
            min_size=1,
            max_size=6,
        ),
    )
    def test_batched_traces_match_the_reference_model(
        self, make_store: MakeStore, composite: bool, bursts: list[Any]
    ) -> None:
        configs = [RateLimitConfig(6, 0.5)]
        if composite:
            configs.append(RateLimitConfig(4, 2.0))
        prefix, clock, model = f"hyp{next(_fresh)}", ManualClock(), Model()

        async def run() -> None:
            async with opened(make_store, clock) as store:
                limiter = self.limiter(store, configs, prefix)
                for step, requests in bursts:
                    clock.advance(step)
                    got = await burst(limiter, requests)
                    want = [model.decide(who, configs, c, clock.now) for who, c in requests]
                    assert [(d.allowed, d.remaining) for d in got] == [
                        (d.allowed, d.remaining) for d in want
                    ]

        asyncio.run(run())


@pytest.fixture
def make_store(redis_url: str) -> Iterator[MakeStore]:
    """Coalescing stores on the session's Redis; each closes with its test's loop."""

    def make(clock: ManualClock | None = None, **options: Any) -> AsyncRedisStore:
        return AsyncRedisStore(aredis.Redis.from_url(redis_url), clock=clock, **options)

    yield make


class TestCoalesce(CoalesceSuite):
    pass


# Faults on a private server: killed under a batch in flight, and cancelled waiters.


async def test_a_batch_in_flight_when_redis_dies_fails_each_waiter_once(
    key_prefix: str,
) -> None:
    """Redis is paused under a batch and killed: every waiter gets the failure policy's
    decision (deny), none hangs; after a restart nothing was charged twice and the next
    burst is exact again."""
    server = RedisServer().start()
    admin = server.client()
    client = aredis.Redis.from_url(server.url, socket_timeout=30, socket_connect_timeout=5)
    store = AsyncRedisStore(client)
    limiter = AsyncTokenBucketRateLimiter(
        RateLimitConfig(100, STILL), store, key_prefix=key_prefix,
        on_store_error=StoreFailureHandler("deny", retry_interval=0), shed_denials=False,
    )  # fmt: skip
    in_flight = asyncio.Event()
    send = store._coalescer.send

    async def pause_then_send(requests: list[Request]) -> Any:
        if len(requests) > 1 and not in_flight.is_set():
            admin.client_pause(60_000)  # the batch is written, and held by the server
            in_flight.set()
        return await send(requests)

    store._coalescer.send = pause_then_send
    try:
        running = asyncio.ensure_future(burst(limiter, [("hot", 1)] * 150))
        await asyncio.wait_for(in_flight.wait(), 60)
        await asyncio.sleep(0.05)  # let the batch reach the socket
        server.stop()
        decisions = await asyncio.wait_for(running, 60)  # bounded: none hangs
        assert len(decisions) == 150
        assert decisions[0].allowed  # decided alone before the batch
        assert not any(d.allowed for d in decisions[1:])  # failed batch: deny, once each
        server.start()
        decisions = await burst(limiter, [("fresh", 1)] * 150)
        assert sum(d.allowed for d in decisions) == 100
    finally:
        await client.aclose()
        admin.close()
        server.stop()


async def test_a_timed_out_batch_is_charged_once(redis_url: str, key_prefix: str) -> None:
    """A batch that outlives the socket timeout fails its waiters and is never sent
    again: Redis runs it once when it resumes, or drops it with the closed connection."""
    admin = redis.Redis.from_url(redis_url)
    client = aredis.Redis.from_url(redis_url, socket_timeout=1.0)
    store = AsyncRedisStore(client)
    limiter = AsyncTokenBucketRateLimiter(
        RateLimitConfig(100, STILL), store, key_prefix=key_prefix,
        on_store_error=StoreFailureHandler("deny", retry_interval=0), shed_denials=False,
    )  # fmt: skip
    sizes: list[int] = []
    sent = store._coalescer.send

    async def pause_then_send(requests: list[Request]) -> Any:
        sizes.append(len(requests))
        if len(requests) > 1:
            admin.client_pause(10_000, all=False)  # WRITE pause: holds the script
        return await sent(requests)

    store._coalescer.send = pause_then_send
    try:
        decisions = await asyncio.wait_for(burst(limiter, [("slow", 1)] * 40), 60)
        assert decisions[0].allowed and not any(d.allowed for d in decisions[1:])
        assert sizes == [1, 39]  # the timed-out batch was not sent again
        admin.client_unpause()
        raw = admin.get(limiter.key_for("slow"))
        assert raw is not None and round(float(raw.split()[0])) in (99, 60)  # never 20
    finally:
        admin.client_unpause()
        await client.aclose()
        admin.close()


async def test_cancelled_waiters_are_never_charged_and_disturb_no_one(
    redis_url: str, key_prefix: str
) -> None:
    """Half the queued waiters are cancelled before their batch leaves: they are not
    charged, and every other waiter gets the decision it would have had."""
    store = AsyncRedisStore(aredis.Redis.from_url(redis_url))
    sizes = record_batches(store)
    limiter = AsyncTokenBucketRateLimiter(
        RateLimitConfig(100, STILL), store, key_prefix=key_prefix, on_store_error="raise"
    )
    try:
        tasks = [asyncio.create_task(limiter.allow_request("c")) for _ in range(121)]
        await asyncio.sleep(0)  # every task has sent (1) or queued (120) its request
        for task in tasks[1::2]:
            task.cancel()
        kept = tasks[0::2]
        decisions = await asyncio.gather(*kept, return_exceptions=True)
        assert all(isinstance(d, Decision) for d in decisions)
        assert sum(d.allowed for d in decisions) == 61  # type: ignore[union-attr]
        assert sum(sizes) == 61  # the cancelled 60 were never sent
        assert round((await limiter.peek("c")).remaining) == 100 - 61
    finally:
        await store.client.aclose()


async def test_a_cancelled_sender_leaves_the_queued_requests_to_the_next_call(
    redis_url: str, key_prefix: str
) -> None:
    """The request sent alone is cancelled mid-flight; the ones queued behind it are
    still sent and decided."""
    store = AsyncRedisStore(aredis.Redis.from_url(redis_url))
    limiter = AsyncTokenBucketRateLimiter(
        RateLimitConfig(100, STILL), store, key_prefix=key_prefix, on_store_error="raise"
    )
    try:
        first = asyncio.create_task(limiter.allow_request("s"))
        await asyncio.sleep(0)  # it is in flight
        queued = [asyncio.create_task(limiter.allow_request("s")) for _ in range(30)]
        await asyncio.sleep(0)
        first.cancel()
        decisions = await asyncio.wait_for(asyncio.gather(*queued), 60)
        assert all(d.allowed for d in decisions)
        remaining = round((await limiter.peek("s")).remaining)
        assert remaining in (100 - 30, 100 - 31)  # the cancelled one may have been charged
    finally:
        await store.client.aclose()


async def test_off_switch_sends_each_decision_alone(redis_url: str, key_prefix: str) -> None:
    pool = aredis.BlockingConnectionPool.from_url(redis_url, max_connections=20, timeout=30)
    store = AsyncRedisStore(aredis.Redis(connection_pool=pool), coalesce=False)
    sizes = record_batches(store)
    limiter = AsyncTokenBucketRateLimiter(
        RateLimitConfig(100, STILL), store, key_prefix=key_prefix, on_store_error="raise"
    )
    try:
        decisions = await burst(limiter, [("off", 1)] * 150)
        assert sum(d.allowed for d in decisions) == 100
        assert sizes == []
    finally:
        await store.client.aclose()
        await pool.disconnect()


def test_max_batch_must_be_a_positive_count() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        AsyncRedisStore(aredis.Redis(), max_batch=0)
