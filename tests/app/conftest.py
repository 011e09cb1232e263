"""Django-side fixtures: the three bucket caches on the session's real Redis, and
``RATELIMIT`` settings isolated per test by key prefix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches

from ratelimit_app.testing import RedisServer

CACHE_KINDS = {
    "locmem": "django.core.cache.backends.locmem.LocMemCache",
    "django-redis": "django_redis.cache.RedisCache",
    "redis-cache": "django.core.cache.backends.redis.RedisCache",
}


def caches_setting(redis_url: str) -> dict[str, dict[str, Any]]:
    """One alias per backend kind, named after it; ``default`` stays local memory."""
    result: dict[str, dict[str, Any]] = {
        "default": {"BACKEND": CACHE_KINDS["locmem"], "LOCATION": "default"},
        "other": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }
    for kind, backend in CACHE_KINDS.items():
        location = kind if kind == "locmem" else redis_url
        result[kind] = {"BACKEND": backend, "LOCATION": location, "KEY_PREFIX": "django-side"}
    return result


@pytest.fixture
def bucket_caches(settings: Any, redis_url: str) -> dict[str, dict[str, Any]]:
    settings.CACHES = caches_setting(redis_url)
    yield settings.CACHES
    caches.close_all()


@pytest.fixture
def slow_policies() -> dict[str, dict[str, float]]:
    """Refill slow enough that token counts are exact while a test runs; a module
    switches to them with ``policies = slow_policies`` fixtures of its own."""
    return {"default": {"capacity": 5, "refill_rate": 1e-6},
            "upload": {"capacity": 5, "refill_rate": 1e-6, "cost": 3}}  # fmt: skip


@pytest.fixture
def policies() -> dict[str, dict[str, float]]:
    return {
        "default": {"capacity": 5, "refill_rate": 1.0},
        "upload": {"capacity": 5, "refill_rate": 1.0, "cost": 3},
    }


@pytest.fixture
def ratelimit(
    settings: Any, bucket_caches: Any, key_prefix: str, policies: Any
) -> Callable[..., dict[str, Any]]:
    """``ratelimit(CACHE="django-redis", ...)`` sets RATELIMIT for this test."""

    def configure(**overrides: Any) -> dict[str, Any]:
        chosen = {"CACHE": "locmem", "KEY_PREFIX": key_prefix, "POLICIES": policies, **overrides}
        # CACHE=None: no CACHE key at all (a STORE URL names the store instead)
        settings.RATELIMIT = {key: value for key, value in chosen.items() if value is not None}
        return settings.RATELIMIT

    configure()
    return configure


@pytest.fixture(scope="session")
def secret_redis() -> Iterator[RedisServer]:
    """A private server that wants the password ``hunter2``: settings that reach it carry
    the password, and nothing the app shows may repeat it."""
    with RedisServer(extra=("--requirepass", "hunter2")) as server:
        yield server
