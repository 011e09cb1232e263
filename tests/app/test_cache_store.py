"""``DjangoCacheStore`` on every cache backend: the core behaviour suite, written once.

``TestBehaviour`` and ``TestCompositeBehaviour`` run the core's ``BehaviourSuite`` and
``CompositeSuite`` on locmem, django-redis and Django's RedisCache, sync and async, through
the ``make_limiter`` fixture below; then come the tests only a Django cache has.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from django.core.cache import caches

from ratelimit_app.cache_store import (
    AsyncDjangoCacheStore,
    DjangoCacheStore,
    ThreadedStore,
    backend_kind,
)
from ratelimit_app.core import (
    AsyncMemoryStore,
    AsyncTokenBucketRateLimiter,
    RateLimitConfig,
    StoreError,
    TokenBucketRateLimiter,
)
from ratelimit_app.core.stores.per_loop import PerLoopStore
from ratelimit_app.testing import RedisServer
from tests.core.conftest import Harness
from tests.core.test_behaviour import BehaviourSuite
from tests.core.test_composite import CompositeSuite

BACKENDS = ["locmem", "django-redis", "redis-cache"]
KINDS = BACKENDS + [f"async-{name}" for name in BACKENDS]


@pytest.fixture
def make_limiter(
    store_kind: str, bucket_caches: Any, redis_url: str, key_prefix: str, clock: Any
) -> Iterator[Callable[..., Harness]]:
    loop = asyncio.new_event_loop()
    raw = redis.Redis.from_url(redis_url)
    alias = store_kind.removeprefix("async-")

    def make(config: RateLimitConfig, use_clock: Any = clock, **options: Any) -> Harness:
        options.setdefault("key_prefix", key_prefix)
        sync = DjangoCacheStore(alias, clock=use_clock)
        peek_raw = None if alias == "locmem" else raw
        if store_kind.startswith("async-"):
            store = AsyncDjangoCacheStore(sync=sync)
            limiter = AsyncTokenBucketRateLimiter(config, store, **options)
            return Harness(limiter, loop.run_until_complete, peek_raw)
        return Harness(TokenBucketRateLimiter(config, sync, **options), lambda v: v, peek_raw)

    yield make
    loop.run_until_complete(loop.shutdown_asyncgens())  # closes the per-loop Redis clients
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
    raw.close()


class TestBehaviour(BehaviourSuite):
    STORE_KINDS = KINDS
    RAW_REDIS_KINDS = ("django-redis", "redis-cache", "async-redis-cache")


class TestCompositeBehaviour(CompositeSuite):
    STORE_KINDS = KINDS


@pytest.mark.parametrize("alias", [*BACKENDS, "other"])
def test_backend_kinds(bucket_caches: Any, alias: str) -> None:
    assert backend_kind(caches[alias]) == alias
    assert DjangoCacheStore(alias).kind == alias


@pytest.mark.parametrize("alias", BACKENDS)
def test_threads_on_one_key_admit_exactly_capacity(
    bucket_caches: Any, key_prefix: str, alias: str
) -> None:
    """64 threads, 400 requests, capacity 100, no refill to speak of: exactly 100 pass."""
    store = DjangoCacheStore(alias)
    limiter = TokenBucketRateLimiter(RateLimitConfig(100, 1e-9), store, key_prefix=key_prefix)
    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(lambda _: limiter.allow_request("same").allowed, range(400)))
    assert results.count(True) == 100


@pytest.mark.parametrize("alias", BACKENDS)
def test_scan_and_get_state_see_live_buckets(bucket_caches: Any, key_prefix: str, alias) -> None:
    store = DjangoCacheStore(alias)
    limiter = TokenBucketRateLimiter(RateLimitConfig(5, 1.0), store, key_prefix=key_prefix)
    limiter.allow_request("ip:10.0.0.1", 2)
    limiter.allow_request("user:7", 1)
    found = dict(store.scan(key_prefix + ":"))
    assert sorted(found) == [f"{key_prefix}:default:ip:10.0.0.1", f"{key_prefix}:default:user:7"]
    state = store.get_state(f"{key_prefix}:default:user:7")
    assert state is not None and 3.9 < state.tokens <= 4.0
    assert store.get_state(f"{key_prefix}:default:nobody") is None


def test_locmem_stores_on_one_location_share_buckets(bucket_caches: Any, key_prefix) -> None:
    config = RateLimitConfig(2, 1e-9)
    first = TokenBucketRateLimiter(config, DjangoCacheStore("locmem"), key_prefix=key_prefix)
    second = TokenBucketRateLimiter(config, DjangoCacheStore("locmem"), key_prefix=key_prefix)
    assert first.allow_request("x", 2)
    assert not second.allow_request("x")


def test_other_backend_is_best_effort_through_the_cache_api(
    settings, key_prefix, tmp_path
) -> None:
    """A file-based cache: works through get/set (the W001 check warns it is not atomic)."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "files": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                  "LOCATION": str(tmp_path / "cache")},
    }  # fmt: skip
    store = DjangoCacheStore("files")
    assert store.kind == "other"
    limiter = TokenBucketRateLimiter(RateLimitConfig(5, 1e-9), store, key_prefix=key_prefix)
    assert limiter.allow_request("a", 3).remaining == pytest.approx(2.0)
    assert not limiter.allow_request("a", 3)
    assert store.get_state(limiter.key_for("a")).tokens == pytest.approx(2.0)
    assert list(store.scan(key_prefix)) == []
    limiter.reset("a")
    assert limiter.allow_request("a", 5)
    caches["files"].clear()


@pytest.mark.parametrize("backend", ["django_redis.cache.RedisCache",
                                     "django.core.cache.backends.redis.RedisCache"])  # fmt: skip
def test_redis_outage_is_a_store_error_and_the_fallback_decides(settings, backend) -> None:
    with RedisServer() as server:
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "down": {"BACKEND": backend, "LOCATION": server.url},
        }
        store = DjangoCacheStore("down")
        config = RateLimitConfig(5, 1e-9)
        assert store.take_all(("k",), (config,), 1).allowed
        server.stop()
        with pytest.raises(StoreError):
            store.take_all(("k",), (config,), 1)
    limiter = TokenBucketRateLimiter(config, store, on_store_error="fallback")
    assert limiter.allow_request("who", 5).allowed  # decided by the memory fallback
    assert not limiter.allow_request("who").allowed
    caches.close_all()


def test_composite_policy_on_a_best_effort_backend(
    settings: Any, bucket_caches: Any, key_prefix: str, tmp_path: Any
) -> None:
    files = "django.core.cache.backends.filebased.FileBasedCache"
    settings.CACHES = {**bucket_caches, "files": {"BACKEND": files, "LOCATION": str(tmp_path)}}
    store = DjangoCacheStore("files")
    assert store.kind == "other"
    limiter = TokenBucketRateLimiter(
        [RateLimitConfig(3, 1e-9), RateLimitConfig(5, 1e-9)], store, key_prefix=key_prefix
    )
    assert limiter.allow_request("x", 2).allowed
    denied = limiter.allow_request("x", 2)
    assert not denied.allowed and denied.limit == 3.0
    assert denied.remaining == pytest.approx(1.0)  # wall clock, negligible refill
    assert limiter.allow_request("x", 1).allowed
    assert limiter.peek("x").remaining == pytest.approx(0.0, abs=1e-6)


def _secret_caches(server: RedisServer) -> dict[str, dict[str, Any]]:
    """The two Redis backends on a password-protected server, database 2, pool of 8."""
    url = f"redis://127.0.0.1:{server.port}/2"
    return {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "django-redis": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"PASSWORD": "hunter2", "CONNECTION_POOL_KWARGS": {"max_connections": 8}},
        },
        "redis-cache": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"password": "hunter2", "max_connections": 8},
        },
    }


@pytest.mark.parametrize("alias", ["django-redis", "redis-cache"])
def test_async_decisions_use_a_native_client_per_loop_closed_with_it(
    settings: Any, secret_redis: RedisServer, key_prefix: str, alias: str
) -> None:
    """Same server, password, db and pool size as the CACHES entry; no worker thread; one
    client per event loop, whose connections are closed when that loop shuts down."""
    settings.CACHES = _secret_caches(secret_redis)
    store = AsyncDjangoCacheStore(sync=DjangoCacheStore(alias))
    limiter = AsyncTokenBucketRateLimiter(RateLimitConfig(5, 1e-9), store, key_prefix=key_prefix)
    connections: list[Any] = []

    async def decide() -> tuple[list[bool], int]:
        loop_thread = threading.get_ident()
        decisions = await asyncio.gather(*(limiter.allow_request("a") for _ in range(7)))
        native = await store.twin.current()
        pool = native.client.connection_pool
        assert (pool.connection_kwargs["db"], pool.max_connections) == (2, 8)
        connections.extend([*pool._available_connections, *pool._in_use_connections])
        assert threading.get_ident() == loop_thread
        return [d.allowed for d in decisions], id(native)

    try:
        first, second = asyncio.run(decide()), asyncio.run(decide())
    finally:
        caches.close_all()
    assert isinstance(store.twin, PerLoopStore)
    assert first[0].count(True) == 5 and second[0] == [False] * 7  # 7 at once: any order
    assert first[1] != second[1]  # a client per loop
    assert connections and not any(c.is_connected for c in connections)  # closed with it
    raw = secret_redis.client(password="hunter2", db=2)
    try:
        assert raw.exists(f"{key_prefix}:default:a") == 1
    finally:
        raw.close()


def test_a_backend_without_an_async_twin_runs_in_a_worker_thread(bucket_caches: Any) -> None:
    assert isinstance(AsyncDjangoCacheStore("other").twin, ThreadedStore)
    assert isinstance(AsyncDjangoCacheStore("locmem").twin, AsyncMemoryStore)


@pytest.mark.django_db
def test_an_async_view_served_by_a_sync_handler_opens_no_connection_per_request(
    client: Any, ratelimit: Any, redis_client: redis.Redis
) -> None:
    """Over WSGI (here Django's sync test client) asgiref runs an async view in a loop
    made for that one request: the decision uses the sync client inline, not a new
    async client per loop."""
    wide = {"capacity": 100, "refill_rate": 1e-6, "cost": 3}
    ratelimit(CACHE="django-redis", POLICIES={"default": wide, "upload": wide})
    assert client.post("/plain/upload").status_code == 200  # the sync pool connects
    opened = redis_client.info("stats")["total_connections_received"]
    responses = [client.post("/plain/upload") for _ in range(5)]
    assert [r["X-RateLimit-Remaining"] for r in responses] == ["94", "91", "88", "85", "82"]
    assert redis_client.info("stats")["total_connections_received"] == opened


def test_the_async_twin_of_a_tls_cache_speaks_tls(
    settings: Any, tls_redis: Any, key_prefix: str
) -> None:
    """django-redis on ``rediss://`` with its CA in the pool options: the async client is
    an SSL one with the same CA, and decides."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "tls": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"rediss://127.0.0.1:{tls_redis.port}/0",
            "OPTIONS": {"CONNECTION_POOL_KWARGS": {"ssl_ca_certs": str(tls_redis.ca)}},
        },
    }
    store = AsyncDjangoCacheStore(sync=DjangoCacheStore("tls"))
    limiter = AsyncTokenBucketRateLimiter(RateLimitConfig(5, 1e-9), store, key_prefix=key_prefix)

    async def decide() -> tuple[float, Any]:
        remaining = (await limiter.allow_request("over-tls")).remaining
        pool = (await store.twin.current()).client.connection_pool
        return remaining, pool

    try:
        remaining, pool = asyncio.run(decide())
    finally:
        caches.close_all()
    assert remaining == pytest.approx(4, abs=0.01)
    assert pool.connection_class is redis.asyncio.connection.SSLConnection
    assert pool.connection_kwargs["ssl_ca_certs"] == str(tls_redis.ca)
