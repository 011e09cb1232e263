"""The memory store stays bounded: LRU eviction and expired-bucket clean-up."""

from __future__ import annotations

import pytest

from ratelimit_app.core import ConfigError, MemoryStore, RateLimitConfig
from tests.conftest import ManualClock

CONFIG = RateLimitConfig(capacity=5, refill_rate=1.0)  # full after 5 s


def test_flood_of_identities_is_bounded_with_lru_eviction(clock: ManualClock) -> None:
    store = MemoryStore(max_keys=100, clock=clock)
    store.take_all(("keep",), (CONFIG,), 5)
    for i in range(10_000):
        store.take_all((f"flood-{i}",), (CONFIG,), 1)
        if i % 50 == 0:
            store.take_all(("keep",), (CONFIG,), 0)  # recently used: survives
    assert len(store) == 100
    assert store.peek_all(("keep",), (CONFIG,)).remaining == 0.0


def test_expired_buckets_are_dropped(clock: ManualClock) -> None:
    store = MemoryStore(clock=clock)
    for i in range(10):
        store.take_all((f"old-{i}",), (CONFIG,), 1)
    clock.advance(6)
    for i in range(10):
        store.take_all((f"new-{i}",), (CONFIG,), 1)
    assert len(store) == 10
    assert all(key.startswith("new-") for key, _ in store.scan())


def test_scan_filters_by_prefix(clock: ManualClock) -> None:
    store = MemoryStore(clock=clock)
    store.take_all(("a:1",), (CONFIG,), 2)
    store.take_all(("b:1",), (CONFIG,), 1)
    assert [(k, s.tokens) for k, s in store.scan("a:")] == [("a:1", 3.0)]


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, None])
def test_bad_max_keys(bad) -> None:
    with pytest.raises(ConfigError, match="max_keys"):
        MemoryStore(max_keys=bad)
