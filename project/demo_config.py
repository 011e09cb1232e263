"""The rate-limit settings the Flask and FastAPI demos share, read from the environment.

One policy, ``default``: each client has one bucket of 5 tokens refilled at 1 token/s,
and each route charges its own cost to it (``GET /api/ping`` 1, ``POST /api/upload`` 3),
as in the Django demo.

- ``REDIS_URL``: store buckets in that Redis (``--use-redis`` without it means
  ``redis://localhost:6379/0``); unset, buckets live in process memory.
- ``RATELIMIT_CAPACITY`` / ``RATELIMIT_REFILL_RATE``: override the policy's capacity (5)
  and refill rate (1 token/s), e.g. for the multi-worker tests.
- ``RATELIMIT_KEY_PREFIX``: the key prefix (default ``rl``), to keep runs apart.
- ``RATELIMIT_ON_STORE_ERROR`` / ``RATELIMIT_RETRY_INTERVAL``: the failure policy.
- ``RATELIMIT_MODE``: ``enforce`` (default) or ``shadow`` (report denials, refuse none).
- ``RATELIMIT_METRICS=1``: Prometheus metrics at ``/metrics``.
- ``RATELIMIT_TRUSTED_PROXIES`` (comma-separated networks) or
  ``RATELIMIT_TRUSTED_PROXY_COUNT``, ``RATELIMIT_PROXY_HEADER``, ``RATELIMIT_IPV6_PREFIX``:
  who may report the client's address (default: nobody, proxy headers are ignored), as in
  the Django demo.

Values are checked by the same parser as any other settings, so a bad one stops the demo
at start-up with the setting's name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ratelimit_app.core import ConfigError
from ratelimit_app.core.stores.from_url import check_redis_url

__all__ = [
    "DEFAULT_REDIS_URL",
    "UPLOAD_COST",
    "configure_logging",
    "demo_settings",
    "django_redis_url",
    "proxy_settings",
]

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
UPLOAD_COST = 3  # tokens an upload takes from the client's one bucket (a ping takes 1)
T = TypeVar("T")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    return _parsed(env, name, default, float, "a number")


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    return _parsed(env, name, default, int, "a whole number")


def _parsed(
    env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T], what: str
) -> T:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be {what}, got {raw!r}") from None


def proxy_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The proxy keys the environment sets (none by default: no header is believed)."""
    found: dict[str, Any] = {}
    if "RATELIMIT_TRUSTED_PROXIES" in env:
        found["TRUSTED_PROXIES"] = [
            net.strip() for net in env["RATELIMIT_TRUSTED_PROXIES"].split(",") if net.strip()
        ]
    for key in ("TRUSTED_PROXY_COUNT", "IPV6_PREFIX"):
        if f"RATELIMIT_{key}" in env:
            found[key] = _whole(env, f"RATELIMIT_{key}", 0)
    if "RATELIMIT_PROXY_HEADER" in env:
        found["PROXY_HEADER"] = env["RATELIMIT_PROXY_HEADER"]
    return found


def storage_url(env: Mapping[str, str], use_redis: bool = False) -> str:
    url = env.get("REDIS_URL")
    if url:
        return url
    return DEFAULT_REDIS_URL if use_redis else "memory://"


def django_redis_url(env: Mapping[str, str] | None = None) -> str:
    """The Django demo's ``REDIS_URL``: empty (local memory) or a Redis URL, checked here
    because django-redis would take any string and fail on every request instead."""
    url = (os.environ if env is None else env).get("REDIS_URL", "")
    if not url:
        return ""
    try:
        return check_redis_url(url)
    except ConfigError as exc:
        raise exc.at("environment variable REDIS_URL") from None


def demo_settings(env: Mapping[str, str] | None = None, use_redis: bool = False) -> dict[str, Any]:
    """One policy, ``default``, for both routes; the routes name their costs."""
    env = os.environ if env is None else env
    default = {
        "capacity": _number(env, "RATELIMIT_CAPACITY", 5),
        "refill_rate": _number(env, "RATELIMIT_REFILL_RATE", 1.0),
    }
    return {
        "STORAGE_URL": storage_url(env, use_redis),
        "KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", "rl"),
        "ON_STORE_ERROR": env.get("RATELIMIT_ON_STORE_ERROR", "fallback"),
        "RETRY_INTERVAL": _number(env, "RATELIMIT_RETRY_INTERVAL", 1.0),
        "MODE": env.get("RATELIMIT_MODE", "enforce"),
        "METRICS": env.get("RATELIMIT_METRICS", "0") == "1",
        "POLICIES": {"default": default},
        **proxy_settings(env),
    }


def configure_logging() -> None:
    """Show each denial (logger ``ratelimit_app``, INFO) on stderr."""
    logger = logging.getLogger("ratelimit_app")
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(message)s"))
        logger.addHandler(handler)
