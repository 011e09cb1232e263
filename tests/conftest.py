"""Shared fixtures: a real redis-server for the whole session, isolated by key prefix.

Tests that use a real server (through these fixtures, the cluster's or a sentinel group)
are marked ``redis``: ``.ci/run`` runs that subset again on each server of the matrix,
chosen by ``REDIS_SERVER`` (see ``ratelimit_app.testing``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
import redis

from ratelimit_app.testing import SentinelGroup, redis_url_or_private
from tests.cluster_server import RedisClusterServer


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``REDIS_URL`` when given, else a private server started here (never a skip)."""
    with redis_url_or_private(os.environ.get("REDIS_URL")) as url:
        yield url


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServer]:
    """A three-master cluster, started once (about two seconds) when a test asks for it,
    always stopped and its files removed."""
    with RedisClusterServer(masters=3) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def sentinel_group() -> Iterator[SentinelGroup]:
    """A master, its replica and three sentinels for tests that leave them alone (drills
    that kill the master start their own)."""
    with SentinelGroup() as group:
        yield group


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


# Fixtures that start or reach a real server; tests under tests/sentinel start their own.
SERVER_FIXTURES = frozenset(
    {"redis_url", "redis_client", "redis_cluster", "sentinel_group", "secret_redis"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        uses = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses or "sentinel" in item.nodeid.split("/"):
            item.add_marker(pytest.mark.redis)


_counter = itertools.count()


@pytest.fixture
def key_prefix() -> str:
    """A prefix no other test uses, so tests never need to flush the server."""
    return f"t{os.getpid()}x{next(_counter)}"


class ManualClock:
    """A clock tests move by hand; starts at an arbitrary non-zero time."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
