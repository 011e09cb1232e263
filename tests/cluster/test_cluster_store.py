"""RedisStore and AsyncRedisStore on a real three-master Redis Cluster.

The bucket script touches one key, so the cluster client routes each decision by that
key's slot; these tests prove the core behaviour holds there, that keys land on every
master, and that a flushed script cache on every node is reloaded by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from redis.cluster import RedisCluster

from ratelimit_app.core import (
    AsyncRedisStore,
    AsyncTokenBucketRateLimiter,
    RateLimitConfig,
    RedisStore,
    TokenBucketRateLimiter,
)
from ratelimit_app.core.config import CLIENT_CLOCK_MIN_TTL
from ratelimit_app.core.stores.redis import BUCKET_SHA
from tests.cluster_server import RedisClusterServer
from tests.conftest import ManualClock
from tests.core.conftest import Harness

pytestmark = pytest.mark.slow

FIVE = RateLimitConfig(capacity=5, refill_rate=1.0)
MakeLimiter = Callable[..., Harness]


def test_new_bucket_is_full_then_denies(make_cluster_limiter: MakeLimiter) -> None:
    limiter = make_cluster_limiter(FIVE)
    assert [bool(limiter.allow("alice")) for _ in range(6)] == [True] * 5 + [False]
    denied = limiter.allow("alice")
    assert (denied.remaining, denied.retry_after, denied.limit) == (0.0, 1.0, 5)


def test_weighted_cost_and_denial_consumes_nothing(make_cluster_limiter: MakeLimiter) -> None:
    limiter = make_cluster_limiter(FIVE)
    assert limiter.allow("bob", cost=3).remaining == 2.0
    denied = limiter.allow("bob", cost=3)
    assert not denied and denied.retry_after == 1.0
    assert limiter.allow("bob", cost=2).remaining == 0.0


def test_refill_with_injected_clock_to_the_float(
    make_cluster_limiter: MakeLimiter, clock: ManualClock
) -> None:
    limiter = make_cluster_limiter(RateLimitConfig(capacity=4, refill_rate=0.5))
    assert limiter.allow("carol", cost=4).remaining == 0.0
    clock.advance(1.25)
    assert limiter.peek("carol").remaining == 0.625
    clock.advance(100.0)
    assert limiter.peek("carol").remaining == 4.0  # capped at capacity
    limiter.reset("carol")
    assert limiter.allow("carol").remaining == 3.0


def test_ttl_is_set_on_the_owning_master(
    make_cluster_limiter: MakeLimiter, redis_cluster: RedisClusterServer
) -> None:
    limiter = make_cluster_limiter(RateLimitConfig(capacity=10, refill_rate=0.25))
    limiter.allow("dave")
    key = limiter.limiter.key_for("dave")
    node = redis_cluster.node_client(redis_cluster.master_for(key))
    try:
        # the fixture's clock is a hand-moved one: the key lives at least an hour
        assert 3590 <= node.ttl(key) <= CLIENT_CLOCK_MIN_TTL
    finally:
        node.close()


def _keys_per_master(cluster: RedisClusterServer, prefix: str) -> list[int]:
    counts = []
    for i in range(len(cluster.nodes)):
        node = cluster.node_client(i)
        try:
            counts.append(sum(1 for _ in node.scan_iter(match=prefix + "*", count=500)))
        finally:
            node.close()
    return counts


def test_two_thousand_identities_spread_over_every_master(
    redis_cluster: RedisClusterServer, cluster_client: RedisCluster, key_prefix: str
) -> None:
    store = RedisStore(cluster_client)
    # Slow refill, so no key expires (TTL = time to full) however slow the machine is.
    slow = RateLimitConfig(capacity=5, refill_rate=1e-3)
    limiter = TokenBucketRateLimiter(slow, store, key_prefix=key_prefix, on_store_error="raise")
    identities = [f"user-{n}" for n in range(2000)]
    assert all(limiter.allow_request(who, cost=2).remaining == 3.0 for who in identities)
    counts = _keys_per_master(redis_cluster, key_prefix)
    assert sum(counts) == 2000 and min(counts) > 500, counts
    slots = {cluster_client.keyslot(limiter.key_for(who)) for who in identities}
    assert len(slots) > 1500  # crc16 scatters them over the whole slot space
    assert {slot * 16 // 16384 for slot in slots} == set(range(16))
    scanned = dict(store.scan(key_prefix + ":"))
    assert len(scanned) == 2000
    assert {state.tokens for state in scanned.values()} == {3.0}


async def test_async_store_first_burst_charges_each_key_once(
    redis_cluster: RedisClusterServer, key_prefix: str
) -> None:
    """300 first decisions at once on a fresh async cluster client: each charged once.

    Before the store read the slot map first, such a burst went to random nodes, met
    MOVED, and redis-py re-sent some scripts that had already run (remaining 3.x, not 4).
    """
    client = redis_cluster.async_client(max_connections=256)
    try:
        store = AsyncRedisStore(client)
        limiter = AsyncTokenBucketRateLimiter(
            FIVE, store, key_prefix=key_prefix, on_store_error="raise"
        )
        decisions = await asyncio.gather(*(limiter.allow_request(f"u{n}") for n in range(300)))
        assert [d.remaining for d in decisions] == [4.0] * 300
        assert min(_keys_per_master(redis_cluster, key_prefix)) > 0
        scanned = [item async for item in store.scan(key_prefix + ":")]
        assert len(scanned) == 300
    finally:
        await client.aclose()


def _flush_scripts_everywhere(cluster: RedisClusterServer) -> None:
    for i in range(len(cluster.nodes)):
        node = cluster.node_client(i)
        try:
            node.script_flush()
            assert node.script_exists(BUCKET_SHA) == [False]
        finally:
            node.close()


def test_noscript_on_every_node_is_reloaded(
    make_cluster_limiter: MakeLimiter, redis_cluster: RedisClusterServer
) -> None:
    limiter = make_cluster_limiter(FIVE)
    names = [f"n{n}" for n in range(30)]
    owners = {redis_cluster.master_for(limiter.limiter.key_for(who)) for who in names}
    assert owners == {0, 1, 2}
    assert all(limiter.allow(who).remaining == 4.0 for who in names)
    _flush_scripts_everywhere(redis_cluster)
    assert all(limiter.allow(who).remaining == 3.0 for who in names)
    _flush_scripts_everywhere(redis_cluster)
    assert all(limiter.peek(who).remaining == 3.0 for who in names)


def test_composite_policy_is_one_script_on_one_master(
    make_cluster_limiter: MakeLimiter, redis_cluster: RedisClusterServer, clock: ManualClock
) -> None:
    """Several buckets per client share a hash tag: one slot, all or none, no CROSSSLOT."""
    burst, sustained = RateLimitConfig(3, 1.0), RateLimitConfig(5, 0.05)
    limiter = make_cluster_limiter([burst, sustained])
    assert [bool(limiter.allow("erin")) for _ in range(4)] == [True, True, True, False]
    clock.advance(3.0)  # burst refills to 3; sustained only to 2 + 3 * 0.05 = 2.15
    assert [bool(limiter.allow("erin")) for _ in range(3)] == [True, True, False]
    keys = limiter.limiter.keys_for("erin")
    assert len({redis_cluster.master_for(key) for key in keys}) == 1
    owners = {redis_cluster.master_for(limiter.limiter.keys_for(f"c{n}")[0]) for n in range(30)}
    assert owners == {0, 1, 2}
