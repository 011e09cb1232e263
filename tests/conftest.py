"""Shared fixtures: a real redis-server for the whole session, isolated by key prefix."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
import redis

from ratelimit_app.core.events import hub
from ratelimit_app.core.limiter import denial_log
from ratelimit_app.testing import redis_url_or_private


@pytest.fixture(autouse=True)
def isolated_event_hub() -> Iterator[None]:
    """Listeners a test registers (METRICS=True, a signal receiver) end with the test."""
    before = hub.listeners
    yield
    hub.listeners = before


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``REDIS_URL`` when given, else a private server started here (never a skip)."""
    with redis_url_or_private(os.environ.get("REDIS_URL")) as url:
        yield url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


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


@pytest.fixture(autouse=True)
def fresh_denial_log() -> None:
    """Each test starts with no open denial-log window, so its first denial is logged
    (the log is one per process: windows opened by earlier tests would swallow it)."""
    denial_log.flush()
