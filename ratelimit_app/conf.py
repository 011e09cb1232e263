"""The one place that reads ``settings.RATELIMIT``.

It is parsed by the framework-free ``parse_settings`` (the same words as Flask and
FastAPI for the same mistakes), plus the Django-only ``CACHE`` alias. The parsed result,
the store and one limiter per policy are built on first use and dropped whenever
``RATELIMIT`` or ``CACHES`` changes (``setting_changed``), so ``override_settings`` works
and nothing is captured at import time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .cache_store import AsyncDjangoCacheStore, DjangoCacheStore
from .core.config import ConfigError, Problem
from .core.limiter import AsyncTokenBucketRateLimiter, TokenBucketRateLimiter
from .core.limits import AsyncLimits, SyncLimits, async_limits, sync_limits
from .core.policies import Policy, Settings, failure_handler, parse_settings
from .core.workers import warn_if_split

__all__ = ["DEFAULT_CACHE", "Runtime", "get_runtime", "raw_settings"]

DEFAULT_CACHE = "default"
EXTRA_KEYS = ("CACHE",)
_lock = threading.Lock()
_runtime: Runtime | None = None


@dataclass(frozen=True)
class Runtime:
    """Everything built from one value of the settings: the same limits for sync and
    async code, over one cache alias and one failure policy."""

    cache_alias: str
    limits: SyncLimits
    async_limits: AsyncLimits

    @property
    def settings(self) -> Settings:
        return self.limits.settings

    @property
    def store(self) -> DjangoCacheStore:
        return self.limits.store  # type: ignore[return-value]

    @property
    def limiters(self) -> dict[str, TokenBucketRateLimiter]:
        return self.limits.limiters

    @property
    def async_limiters(self) -> dict[str, AsyncTokenBucketRateLimiter]:
        return self.async_limits.limiters

    def policy(self, name: str) -> Policy:
        return self.settings.policy(name)

    def limiter(self, name: str) -> TokenBucketRateLimiter:
        return self.limits.limiter(name)

    def async_limiter(self, name: str) -> AsyncTokenBucketRateLimiter:
        return self.async_limits.limiter(name)


def raw_settings() -> Any:
    """``settings.RATELIMIT`` as written (the checks validate it piece by piece)."""
    return getattr(django_settings, "RATELIMIT", None)


def parse() -> Settings:
    return parse_settings(raw_settings(), extra_keys=EXTRA_KEYS)


def cache_alias(parsed: Settings) -> str:
    alias = parsed.extra.get("CACHE", DEFAULT_CACHE)
    if not isinstance(alias, str) or alias not in django_settings.CACHES:
        known = ", ".join(sorted(django_settings.CACHES)) or "none"
        raise ConfigError(
            f"RATELIMIT['CACHE'] = {alias!r} is not a cache alias in CACHES (have: {known})",
            kind=Problem.CACHE,
            setting="RATELIMIT['CACHE']",
        )
    return alias


def _build() -> Runtime:
    parsed = parse()
    alias = cache_alias(parsed)
    store = DjangoCacheStore(alias)
    warn_if_split(store.kind == "locmem", f"RATELIMIT['CACHE'] = {alias!r}, a LocMemCache")
    # one failure policy for both: one back-off, one fallback memory, one warning
    failure = failure_handler(parsed)
    return Runtime(
        alias,
        sync_limits(parsed, store, failure),
        async_limits(parsed, AsyncDjangoCacheStore(sync=store), failure),
    )


def get_runtime() -> Runtime:
    """The current runtime; raises ``ConfigError`` naming the bad setting."""
    global _runtime
    current = _runtime
    if current is None:
        with _lock:
            if _runtime is None:
                _runtime = _build()
            current = _runtime
    return current


@receiver(setting_changed)
def _drop_runtime(*, setting: str, **kwargs: Any) -> None:
    global _runtime
    if setting in ("RATELIMIT", "CACHES"):
        with _lock:
            _runtime = None
