"""The coalescing suite on the three-master cluster: a batch is split by hash slot, one
call per slot, and every decision stays exact (``tests/core/test_coalesce.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ratelimit_app.core import AsyncRedisStore
from tests.cluster_server import RedisClusterServer
from tests.conftest import ManualClock
from tests.core.test_coalesce import CoalesceSuite, MakeStore

pytestmark = pytest.mark.slow


@pytest.fixture
def make_store(redis_cluster: RedisClusterServer) -> Iterator[MakeStore]:
    def make(clock: ManualClock | None = None, **options: Any) -> AsyncRedisStore:
        return AsyncRedisStore(redis_cluster.async_client(), clock=clock, **options)

    yield make


class TestClusterCoalesce(CoalesceSuite):
    pass
