"""Fixtures both adapters' tests share: the store matrix and a Redis that can be stopped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from ratelimit_app.core.stores.redis import parse_state
from ratelimit_app.testing import RedisServer
from tests.hostile_settings import HOSTILE, HOSTILE_STORAGE


@pytest.fixture(params=["memory", "redis"])
def storage_url(request: pytest.FixtureRequest) -> str:
    """Every adapter test runs once on memory and once on the session's real Redis."""
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A private redis-server this test may stop and restart (same port)."""
    with RedisServer() as server:
        yield server


def stored_tokens(client: redis.Redis, key: str) -> float | None:
    """Tokens left in a bucket as Redis itself holds it (None: no such key)."""
    raw = client.get(key)
    return None if raw is None else parse_state(raw).tokens  # type: ignore[arg-type]


# capacity 5, refill so slow that a test never sees a token come back
SLOW = 0.001
POLICIES = {
    "default": {"capacity": 5, "refill_rate": SLOW},
    "upload": {"capacity": 5, "refill_rate": SLOW, "cost": 3},
}
BAD_SETTINGS = [
    pytest.param({"POLICIES": {"default": {"capacity": -1, "refill_rate": 1}}}, "capacity",
                 id="negative-capacity"),
    pytest.param({"STORAGE_URL": "ftp://example.com"}, "STORAGE_URL", id="bad-url"),
    pytest.param({"STORAGE_URL": "redis://localhost:notaport/0"}, "STORAGE_URL", id="bad-port"),
    pytest.param({"MAX_CONNECTIONS": 0}, "MAX_CONNECTIONS", id="pool-size"),
    pytest.param({"POOL_TIMEOUT": "5"}, "POOL_TIMEOUT", id="pool-timeout"),
    pytest.param({"TRUSTED_PROXY_COUNT": -1}, "TRUSTED_PROXY_COUNT", id="proxies"),
    pytest.param({"ON_STORE_ERROR": "ignore"}, "ON_STORE_ERROR", id="failure-mode"),
    pytest.param({"CACHE": "default"}, "unknown setting", id="unknown-key"),
    # the values that parse but would defeat the limiter, without Django's check id
    *(pytest.param(*row.values[:2], id=row.id) for row in HOSTILE),
    *HOSTILE_STORAGE,
]  # fmt: skip


# A composite "default": a burst bucket of 5 and a slow bucket of 3; both must admit.
BURST = {"capacity": 5, "refill_rate": 1.0}
COMPOSITE = {**POLICIES, "default": {"buckets": [BURST, {"capacity": 3, "refill_rate": SLOW}]}}
