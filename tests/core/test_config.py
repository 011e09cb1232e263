"""Bad configuration fails at construction with a message naming the value."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ratelimit_app.core import (
    ConfigError,
    Problem,
    RateLimitConfig,
    StoreFailureHandler,
    parse_settings,
    settings_errors,
)
from ratelimit_app.core.config import MAX_HEADER_INT, MAX_TTL
from ratelimit_app.core.headers import render_headers
from ratelimit_app.core.limiter import TokenBucketRateLimiter
from ratelimit_app.core.stores.memory import MemoryStore
from tests.hostile_settings import HOSTILE

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
    [(5, 1.0, 5), (10, 3.0, 4), (1, 10.0, 1), (100, 1e-9, MAX_TTL), (1e15 - 1, 1, MAX_TTL)],
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


@pytest.mark.parametrize("capacity", [0.5, 0.999, MAX_HEADER_INT + 1, 1e16, 10**400])
def test_capacity_is_from_one_to_fifteen_digits(capacity: Any) -> None:
    """Below 1, ``X-RateLimit-Limit: 0`` would show while requests pass; above 15 digits
    no header can carry it as a Structured-Fields integer."""
    with pytest.raises(ConfigError, match=r"capacity must be a finite number >= 1 and <="):
        RateLimitConfig(capacity, refill_rate=1.0)


@pytest.mark.parametrize(("capacity", "rate"), [(5, 1e-320), (1, 1e-15), (1e14, 1e-3)])
def test_refill_from_empty_must_fit_in_a_header(capacity: float, rate: float) -> None:
    with pytest.raises(ConfigError, match=r"refill_rate .* is too small for capacity"):
        RateLimitConfig(capacity, rate)


def test_the_extreme_accepted_bucket_renders_finite_headers() -> None:
    config = RateLimitConfig(MAX_HEADER_INT, 1.0)  # the largest capacity and window
    limiter = TokenBucketRateLimiter(config, MemoryStore())
    limiter.allow_request("x", MAX_HEADER_INT)
    denied = limiter.allow_request("x", MAX_HEADER_INT)
    headers = render_headers(denied, "p")
    assert not denied.allowed and headers["Retry-After"] == str(MAX_HEADER_INT)
    assert headers["RateLimit-Policy"] == f'"p";q={MAX_HEADER_INT};w={MAX_HEADER_INT}'


@pytest.mark.parametrize("interval", [300.5, 1e308, math.inf])
def test_retry_interval_is_at_most_five_minutes(interval: float) -> None:
    with pytest.raises(ConfigError, match=r"retry_interval \(seconds\) must be .* <= 300"):
        StoreFailureHandler("allow", retry_interval=interval)
    assert StoreFailureHandler("allow", retry_interval=300).retry_interval == 300


@pytest.mark.parametrize(("raw", "named", "check_id"), HOSTILE)
def test_hostile_settings_are_refused_naming_the_setting(
    raw: Any, named: str, check_id: str
) -> None:
    with pytest.raises(ConfigError, match=named) as info:
        parse_settings(raw)
    assert str(info.value).startswith("RATELIMIT[")
