"""``conf``: parsed once, rebuilt when ``RATELIMIT`` or ``CACHES`` changes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from ratelimit_app.conf import get_runtime
from ratelimit_app.core import ConfigError


def test_runtime_is_cached_and_refreshed_by_override_settings(ratelimit: Any) -> None:
    first = get_runtime()
    assert get_runtime() is first
    with override_settings(RATELIMIT={"POLICIES": {"tiny": {"capacity": 1, "refill_rate": 2}}}):
        inside = get_runtime()
        assert list(inside.settings.policies) == ["tiny"]
        assert inside.cache_alias == "default"
    assert get_runtime().settings.policies.keys() == {"default", "upload"}


def test_changing_caches_rebuilds_the_store(ratelimit: Any, settings: Any) -> None:
    before = get_runtime().store
    settings.CACHES = {**settings.CACHES}
    assert get_runtime().store is not before


@pytest.mark.parametrize(
    ("raw", "match"),
    [({"CACHE": "missing"}, r"RATELIMIT\['CACHE'\] = 'missing' is not a cache alias"),
     ({"BOGUS": 1}, r"unknown setting\(s\) \['BOGUS'\]")],
)  # fmt: skip
def test_bad_settings_raise_config_errors_naming_them(settings, raw, match) -> None:
    settings.RATELIMIT = raw
    with pytest.raises(ConfigError, match=match):
        get_runtime()


def test_sync_and_async_limiters_share_one_failure_handler(ratelimit: Any) -> None:
    runtime = get_runtime()
    assert runtime.async_limiter("upload").failure is runtime.limiter("upload").failure
    with pytest.raises(ConfigError, match="unknown rate-limit policy"):
        runtime.async_limiter("nope")


def test_a_store_url_replaces_the_cache(ratelimit: Any, secret_redis: Any, key_prefix) -> None:
    url = f"redis://:hunter2@127.0.0.1:{secret_redis.port}/3"
    ratelimit(CACHE=None, STORE=url, MAX_CONNECTIONS=4)
    runtime = get_runtime()
    assert runtime.cache_alias is None and runtime.store.kind == "redis"
    assert runtime.store.label == f"store redis://:***@127.0.0.1:{secret_redis.port}/3"
    assert runtime.limiter("default").allow_request("ip:10.0.0.1").remaining == 4
    raw = secret_redis.client(password="hunter2", db=3)
    try:
        assert raw.exists(f"{key_prefix}:default:ip:10.0.0.1") == 1
    finally:
        raw.close()


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"STORE": "foo://bar"}, r"RATELIMIT\['STORE'\]: 'foo://bar' is not a store URL"),
        ({"STORE": "redis://:hunter2@h:1/0", "CACHE": "default"}, "STORE .* or CACHE"),
        ({"MAX_CONNECTIONS": 5}, "STORE is not set"),
        ({"STORE": "redis://h/0", "POOL_TIMEOUT": -1}, r"RATELIMIT\['POOL_TIMEOUT'\]"),
    ],
)
def test_bad_store_settings_name_them(settings: Any, raw: Any, match: str) -> None:
    settings.RATELIMIT = raw
    with pytest.raises(ConfigError, match=match) as info:
        get_runtime()
    assert "hunter2" not in str(info.value)
