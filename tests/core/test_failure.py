"""The failure policy with a real Redis stopped and restarted under the limiter."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry as SyncRetry

from ratelimit_app.core import (
    AsyncRedisStore,
    AsyncTokenBucketRateLimiter,
    ConfigError,
    RateLimitConfig,
    RedisStore,
    StoreError,
    StoreFailureHandler,
    TokenBucketRateLimiter,
)
from ratelimit_app.testing import RedisServer

CONFIG = RateLimitConfig(capacity=3, refill_rate=1e-9)
# redis-py retries failed commands with back-off by default; the limiter's own failure
# policy is the retry strategy here, so each call fails fast instead.
TIMEOUTS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
EXPECTED_DURING_OUTAGE = {
    "fallback": [True, True, True, False, False],  # a local bucket, full, then empty
    "allow": [True] * 5,
    "deny": [False] * 5,
}


def make(style: str, server: RedisServer, mode: str, loop: asyncio.AbstractEventLoop) -> Any:
    handler = StoreFailureHandler(mode, retry_interval=0)
    if style == "sync":
        store: Any = RedisStore(server.client(retry=SyncRetry(NoBackoff(), 0), **TIMEOUTS))
        return TokenBucketRateLimiter(CONFIG, store, on_store_error=handler)
    client = aredis.Redis(
        host="127.0.0.1", port=server.port, retry=AsyncRetry(NoBackoff(), 0), **TIMEOUTS
    )
    return AsyncTokenBucketRateLimiter(CONFIG, AsyncRedisStore(client), on_store_error=handler)


def runner(loop: asyncio.AbstractEventLoop) -> Callable[[Any], Any]:
    return lambda value: loop.run_until_complete(value) if asyncio.iscoroutine(value) else value


@pytest.fixture
def loop() -> Any:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize("style", ["sync", "async"])
@pytest.mark.parametrize("mode", ["fallback", "allow", "deny"])
def test_outage_follows_policy_logs_once_and_recovers(
    style: str, mode: str, loop: Any, caplog: pytest.LogCaptureFixture
) -> None:
    run = runner(loop)
    with RedisServer() as server:
        limiter = make(style, server, mode, loop)
        raw = server.client()
        key = limiter.key_for("client")
        assert run(limiter.allow_request("client")).remaining == 2.0
        assert raw.exists(key)

        server.stop()
        with caplog.at_level(logging.WARNING, logger="ratelimit_app"):
            during = [run(limiter.allow_request("client")).allowed for _ in range(5)]
        assert during == EXPECTED_DURING_OUTAGE[mode]
        failures = [r for r in caplog.records if "store failed" in r.getMessage()]
        assert len(failures) == 1

        server.start()
        back = run(limiter.allow_request("client"))
        # A restarted Redis without persistence forgot the bucket: it is full again.
        assert back.allowed and back.remaining == 2.0
        assert raw.exists(key)
        assert any("answers again" in r.getMessage() for r in caplog.records)
        raw.close()
        if style == "async":
            run(limiter.store.client.aclose())


@pytest.mark.parametrize("style", ["sync", "async"])
def test_raise_mode_surfaces_store_error_only(style: str, loop: Any) -> None:
    run = runner(loop)
    with RedisServer() as server:
        limiter = make(style, server, "raise", loop)
        server.stop()
        for _ in range(2):
            with pytest.raises(StoreError, match="redis"):
                run(limiter.allow_request("client"))
        server.start()
        assert run(limiter.allow_request("client")).allowed
        if style == "async":
            run(limiter.store.client.aclose())


def test_back_off_skips_the_store_until_the_interval_passes() -> None:
    now = [0.0]
    handler = StoreFailureHandler("deny", retry_interval=2.0, clock=lambda: now[0])
    handler.failed(StoreError("boom"))
    assert handler.should_skip_store()
    now[0] = 1.9
    assert handler.should_skip_store()
    now[0] = 2.0
    assert not handler.should_skip_store()
    denied = handler.decide("k", (CONFIG,), 1.0)
    assert not denied.allowed and denied.retry_after == 1.0 / CONFIG.refill_rate


def test_back_off_is_per_scope_and_a_whole_store_failure_covers_every_scope(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cluster store names the node a key lives on: one failed node is left alone, the
    others are still asked; the incident ends when no node is left down."""
    now = [0.0]
    handler = StoreFailureHandler("fallback", retry_interval=1.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="ratelimit_app"):
        handler.failed(StoreError("refused"), "10.0.0.1:7000")
        assert handler.should_skip_store("10.0.0.1:7000")
        assert not handler.should_skip_store("10.0.0.2:7000")
        handler.failed(StoreError("refused"), "10.0.0.2:7000")
        handler.succeeded("10.0.0.1:7000")
        assert handler.down_scopes() == ["10.0.0.2:7000"] and handler.store_is_down
        handler.succeeded("10.0.0.2:7000")
        assert not handler.store_is_down
        handler.failed(StoreError("no node answers"))  # scope None: the whole store
        assert handler.should_skip_store("10.0.0.3:7000") and handler.should_skip_store()
        now[0] = 1.0
        assert not handler.should_skip_store("10.0.0.3:7000")
    assert "10.0.0.1:7000: refused" in caplog.records[0].getMessage()


@pytest.mark.parametrize("bad", ["open", "", None, 3])
def test_unknown_failure_mode_is_a_clear_error(bad: Any) -> None:
    with pytest.raises(ConfigError, match="on_store_error"):
        StoreFailureHandler(bad)


def test_a_flapping_store_is_logged_once_per_quiet_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    handler = StoreFailureHandler("fallback", retry_interval=0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="ratelimit_app"):
        for _ in range(50):  # fail, recover, fail, ... within seconds
            handler.failed(StoreError("boom"))
            handler.succeeded()
            now[0] += 0.1
        assert [r.getMessage()[:25] for r in caplog.records] == [
            "rate-limit store failed (",
            "rate-limit store answers ",
        ]
        now[0] += 30
        handler.failed(StoreError("boom"))
    assert "49 more short outages" in caplog.records[-1].getMessage()
