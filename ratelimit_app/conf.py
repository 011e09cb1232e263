"""The one place that reads ``settings.RATELIMIT``.

It is parsed by the framework-free ``parse_settings`` (the same words as Flask and
FastAPI for the same mistakes), plus where the buckets live: the ``CACHE`` alias, or a
``STORE`` URL (with the pool keys Flask and FastAPI share). The parsed result,
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
from .core.policies import Policy, Settings, default_policy, failure_handler, parse_settings
from .core.request_limits import Limit
from .core.stores.from_url import POOL_KEYS, StorageOptions, parse_storage_options
from .core.workers import warn_if_split

__all__ = [
    "DEFAULT_CACHE",
    "Runtime",
    "check_global",
    "get_runtime",
    "global_limit",
    "raw_settings",
]

DEFAULT_CACHE = "default"
# DEFAULT_POLICY / EXEMPT_PATHS: the middleware's global limit (ratelimit_app.middleware).
EXTRA_KEYS = ("CACHE", "STORE", "DEFAULT_POLICY", "EXEMPT_PATHS", *POOL_KEYS)
_lock = threading.Lock()
_runtime: Runtime | None = None


@dataclass(frozen=True)
class Runtime:
    """Everything built from one value of the settings: the same limits for sync and
    async code, over one store (a cache alias, or None for a ``STORE`` URL) and one
    failure policy."""

    cache_alias: str | None
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


def store_options(parsed: Settings) -> StorageOptions | None:
    """The ``STORE`` URL and pool options, or None when the buckets are in a cache."""
    if "STORE" not in parsed.extra:
        given = sorted(set(POOL_KEYS) & set(parsed.extra))
        if given:
            raise ConfigError(
                f"RATELIMIT: {given} configure the STORE URL's pool, and STORE is not set",
                kind=Problem.STORE,
                setting="RATELIMIT['STORE']",
            )
        return None
    if "CACHE" in parsed.extra:
        raise ConfigError(
            "RATELIMIT: set STORE (a URL) or CACHE (an alias in CACHES), not both",
            kind=Problem.STORE,
            setting="RATELIMIT['STORE']",
        )
    try:
        return parse_storage_options(parsed.extra, url_key="STORE")
    except ConfigError as exc:
        raise ConfigError(str(exc), kind=Problem.STORE, setting=exc.setting) from None


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
    options = store_options(parsed)
    store = DjangoCacheStore(options=options) if options else DjangoCacheStore(cache_alias(parsed))
    if options is None:
        warn_if_split(
            store.kind == "locmem", f"RATELIMIT['CACHE'] = {store.alias!r}, a LocMemCache"
        )
    else:
        warn_if_split(options.is_memory, "RATELIMIT['STORE'] = 'memory://'")
    # one failure policy for both: one back-off, one fallback memory, one warning
    failure = failure_handler(parsed)
    return Runtime(
        store.alias,
        sync_limits(parsed, store, failure),
        async_limits(parsed, AsyncDjangoCacheStore(sync=store), failure),
    )


def check_global(parsed: Settings) -> tuple[Limit, tuple[str, ...]] | None:
    """``DEFAULT_POLICY`` (a configured policy) and ``EXEMPT_PATHS`` (path prefixes)."""
    name = default_policy(parsed)
    paths = parsed.extra.get("EXEMPT_PATHS", ())
    if not isinstance(paths, (list, tuple)) or not all(
        isinstance(path, str) and path.startswith("/") for path in paths
    ):
        raise ConfigError(
            f"RATELIMIT['EXEMPT_PATHS'] must be a list of path prefixes such as "
            f"['/admin/', '/healthz'], got {paths!r}",
            kind=Problem.GLOBAL,
            setting="RATELIMIT['EXEMPT_PATHS']",
        )
    return None if name is None else (Limit(name), tuple(paths))


def global_limit(runtime: Runtime) -> tuple[Limit, tuple[str, ...]] | None:
    """The middleware's global limit and exempt prefixes (read once per settings)."""
    rules = runtime.limits.rules
    if "global" not in rules:
        rules["global"] = check_global(runtime.settings)
    return rules["global"]  # type: ignore[no-any-return]


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
