"""Named policies and the settings dict every framework reads; one limiter per policy.

The settings are parsed in one place, ``settings.py`` (each policy's dict by
``policy.py``); this module builds the limiters the parsed settings ask for, and is where
the parser's names are imported from.
"""

from __future__ import annotations

from typing import Any, TypeVar

from .failure import StoreFailureHandler
from .limiter import AsyncTokenBucketRateLimiter, TokenBucketRateLimiter
from .policy import Policy, parse_policy
from .settings import COMMON_KEYS, Settings, default_policy, parse_settings, settings_errors
from .stores.base import AsyncStore, SyncStore

__all__ = [
    "COMMON_KEYS",
    "Policy",
    "Settings",
    "default_policy",
    "make_async_limiters",
    "make_limiters",
    "parse_policy",
    "parse_settings",
    "settings_errors",
]

L = TypeVar("L", TokenBucketRateLimiter, AsyncTokenBucketRateLimiter)


def make_limiters(
    settings: Settings, store: SyncStore, failure: StoreFailureHandler | None = None
) -> dict[str, TokenBucketRateLimiter]:
    """One limiter per policy over one store, sharing one failure handler (one warning
    per incident, one back-off). Pass ``failure`` to share it with async twins too."""
    return _limiters(TokenBucketRateLimiter, settings, store, failure)


def make_async_limiters(
    settings: Settings, store: AsyncStore, failure: StoreFailureHandler | None = None
) -> dict[str, AsyncTokenBucketRateLimiter]:
    return _limiters(AsyncTokenBucketRateLimiter, settings, store, failure)


def failure_handler(settings: Settings) -> StoreFailureHandler:
    """The failure policy the settings ask for, to share between limiters."""
    return StoreFailureHandler(settings.on_store_error, retry_interval=settings.retry_interval)


def _limiters(
    kind: type[L], settings: Settings, store: Any, failure: StoreFailureHandler | None
) -> dict[str, L]:
    """One limiter per policy, and one per tier of a tiered policy (``<policy>:<tier>``;
    the policy's own name is its default tier's)."""
    shared = failure or failure_handler(settings)
    found: dict[str, L] = {}
    for name, policy in settings.policies.items():
        options: dict[str, Any] = dict(
            name=name, key_prefix=settings.key_prefix, on_store_error=shared,
            shadow=settings.shadow(name),
        )  # fmt: skip
        if policy.tier is None:
            found[name] = kind(policy.configs, store, **options)
            continue
        for tier, configs in policy.tiers.items():
            found[f"{name}:{tier}"] = kind(configs, store, tier=tier, **options)
        found[name] = found[f"{name}:{policy.tier.default}"]
    return found
