"""Bad configuration fails at construction with a message naming the value."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ratelimit_app.core import (
    ConfigError,
    Problem,
    RateLimitConfig,
    parse_settings,
    settings_errors,
)
from ratelimit_app.core.config import MAX_TTL

BAD_NUMBERS = [0, -1, math.nan, math.inf, -math.inf, "5", None, True]


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_bad_capacity(bad: Any) -> None:
    with pytest.raises(ConfigError, match="capacity"):
        RateLimitConfig(capacity=bad, refill_rate=1.0)


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_bad_refill_rate(bad: Any) -> None:
    with pytest.raises(ConfigError, match="refill_rate"):
        RateLimitConfig(capacity=1, refill_rate=bad)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("capacity", "rate", "ttl"),
    [(5, 1.0, 5), (10, 3.0, 4), (0.5, 10.0, 1), (100, 1e-9, MAX_TTL), (1e308, 1e-300, MAX_TTL)],
)
def test_ttl_is_time_to_full_rounded_up_and_bounded(capacity, rate, ttl) -> None:
    assert RateLimitConfig(capacity, rate).ttl == ttl


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"POLICIES": {"p": {"capacity": 0, "refill_rate": 1}}}, r"\['p'\]: capacity"),
        ({"POLICIES": {"p": {"capacity": 2, "refill_rate": 1, "cost": 3}}}, "exceeds capacity"),
        ({"POLICIES": {"p": {"capacity": 2}}}, "missing"),
        ({"POLICIES": {"p": {"capacity": 2, "refill_rate": 1, "burst": 3}}}, "burst"),
        ({"POLICIES": {"a b": {"capacity": 2, "refill_rate": 1}}}, "policy name"),
        ({"POLICIES": []}, "POLICIES"),
        ({"KEY_PREFIX": "a:b"}, "KEY_PREFIX"),
        ({"ON_STORE_ERROR": "open"}, "ON_STORE_ERROR"),
        ({"TRUSTED_PROXY_COUNT": -1}, "TRUSTED_PROXY_COUNT"),
        ({"RETRY_INTERVAL": math.nan}, "RETRY_INTERVAL"),
        ({"IETF_HEADERS": "yes"}, "IETF_HEADERS"),
        ({"CACHES": "default"}, "unknown setting"),
        ({"MODE": "dry-run"}, r"MODE'\]: must be one of \['enforce', 'shadow'\]"),
        ({"POLICIES": {"p": {"capacity": 2, "refill_rate": 1, "mode": 1}}}, r"\['mode'\]"),
        ({"POLICIES": {"p": {"buckets": [], "mode": "shadow"}}}, "empty"),
        ({"METRICS": "on"}, "METRICS"),
    ],
)
def test_settings_errors_name_the_setting(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(raw)


def test_settings_defaults_and_extra_keys() -> None:
    settings = parse_settings({"CACHE": "buckets"}, extra_keys=("CACHE",))
    assert settings.extra == {"CACHE": "buckets"}
    assert settings.policy("default").smallest == RateLimitConfig(5, 1.0)
    assert (settings.key_prefix, settings.on_store_error, settings.trusted_proxy_count) == (
        "rl",
        "fallback",
        0,
    )
    with pytest.raises(ConfigError, match="unknown rate-limit policy 'nope'"):
        settings.policy("nope")


def test_mode_is_global_with_per_policy_overrides() -> None:
    shape = {"capacity": 2, "refill_rate": 1}
    raw = {
        "MODE": "shadow",
        "POLICIES": {
            "new": shape,
            "old": {**shape, "mode": "enforce"},
            "both": {"buckets": [shape, shape], "mode": "shadow"},
        },
    }
    settings = parse_settings(raw)
    assert [settings.shadow(n) for n in ("new", "old", "both")] == [True, False, True]
    assert not parse_settings({}).shadow("default")
    errors = settings_errors({"MODE": "x", "POLICIES": {"p": {**shape, "mode": "y"}}})
    assert [e.kind for e in errors] == [Problem.MODE, Problem.MODE]
