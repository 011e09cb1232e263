"""The admin's listing and actions over a Redis Cluster: every master is scanned."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from ratelimit_app import inspection
from ratelimit_app.conf import Runtime
from ratelimit_app.core import AsyncMemoryStore, RedisStore, parse_settings
from ratelimit_app.core.limits import async_limits, sync_limits
from tests.cluster_server import RedisClusterServer


@pytest.fixture
def runtime(redis_cluster: RedisClusterServer, key_prefix: str) -> Iterator[Runtime]:
    settings = parse_settings(
        {"KEY_PREFIX": key_prefix, "POLICIES": {"default": {"capacity": 5, "refill_rate": 1e-6}}}
    )
    client = redis_cluster.client()
    limits = sync_limits(settings, RedisStore(client))
    yield Runtime("cluster", limits, async_limits(settings, AsyncMemoryStore()))  # type: ignore[arg-type]
    client.close()


def test_listing_finds_buckets_on_every_master_and_acts_on_them(
    runtime: Runtime, redis_cluster: RedisClusterServer, key_prefix: str
) -> None:
    limiter = runtime.limiter("default")
    for n in range(60):
        limiter.allow_request(f"ip:10.0.0.{n}", 5)
    client: RedisCluster = runtime.store.client  # type: ignore[attr-defined]
    masters = {
        client.get_node_from_key(limiter.keys_for(f"ip:10.0.0.{n}")[0]).name for n in range(60)
    }
    assert len(masters) == 3  # the buckets really are spread over the three masters
    found = inspection.listing(per_page=100, runtime=runtime)
    assert found.live == 60 and all(row.refused for row in found.rows)
    key = limiter.keys_for("ip:10.0.0.7")[0]
    assert "now 2" in inspection.act("grant", key, "2", runtime)
    assert [limiter.allow_request("ip:10.0.0.7").allowed for _ in range(3)] == [True, True, False]
    inspection.act("reset", key, runtime=runtime)
    assert inspection.listing(per_page=100, runtime=runtime).live == 59
