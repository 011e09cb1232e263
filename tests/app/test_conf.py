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
