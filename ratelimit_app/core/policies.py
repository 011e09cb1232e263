"""Named policies and the settings dict every framework reads, parsed in one place.

Django's ``settings.RATELIMIT``, Flask's ``app.config["RATELIMIT"]`` and the FastAPI
adapter's options share one shape (DESIGN.md "Django settings") and one parser, so a bad
value is rejected with the same message naming the same setting everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .config import ConfigError, RateLimitConfig, check_cost, check_policy_name
from .failure import FAILURE_MODES, StoreFailureHandler
from .keys import check_prefix
from .limiter import AsyncTokenBucketRateLimiter, TokenBucketRateLimiter
from .stores.base import AsyncStore, SyncStore

__all__ = [
    "COMMON_KEYS",
    "Policy",
    "Settings",
    "default_policy",
    "make_async_limiters",
    "make_limiters",
    "parse_settings",
]

COMMON_KEYS = frozenset(
    {
        "KEY_PREFIX",
        "ON_STORE_ERROR",
        "RETRY_INTERVAL",
        "TRUSTED_PROXY_COUNT",
        "POLICIES",
        "LEGACY_HEADERS",
        "IETF_HEADERS",
    }
)
L = TypeVar("L", TokenBucketRateLimiter, AsyncTokenBucketRateLimiter)
_POLICY_KEYS = frozenset({"capacity", "refill_rate", "cost"})
_COMPOSITE_KEYS = frozenset({"buckets", "cost"})


@dataclass(frozen=True, slots=True)
class Policy:
    """A named bucket shape and the default cost of one request against it.

    A composite policy has several ``buckets`` (all must admit a request); ``config`` is
    then its smallest bucket, the one that bounds the cost.
    """

    name: str
    config: RateLimitConfig
    cost: float = 1.0
    buckets: tuple[RateLimitConfig, ...] = ()

    @property
    def configs(self) -> tuple[RateLimitConfig, ...]:
        return self.buckets or (self.config,)

    def check_cost(self, cost: Any) -> float:
        return self.config.check_cost(cost)


@dataclass(frozen=True, slots=True)
class Settings:
    policies: Mapping[str, Policy]
    key_prefix: str = "rl"
    on_store_error: str = "fallback"
    retry_interval: float = 1.0
    trusted_proxy_count: int = 0
    legacy_headers: bool = True
    ietf_headers: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    def policy(self, name: str) -> Policy:
        try:
            return self.policies[name]
        except KeyError:
            known = ", ".join(sorted(self.policies)) or "none"
            raise ConfigError(
                f"unknown rate-limit policy {name!r} (configured: {known})"
            ) from None


def parse_policy(name: Any, raw: Any, where: str = "RATELIMIT") -> Policy:
    """``{"capacity", "refill_rate", "cost"?}``, or ``{"buckets": [...], "cost"?}`` for a
    composite policy whose buckets must all admit a request."""
    label = f"{where}['POLICIES'][{name!r}]"
    try:
        check_policy_name(name)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{label} must be a dict with capacity and refill_rate, got {raw!r}")
    if "buckets" in raw:
        configs = _parse_buckets(raw, label)
    else:
        configs = (_parse_bucket(raw, label, _POLICY_KEYS),)
    smallest = min(configs, key=lambda c: c.capacity)
    try:
        cost = check_cost(raw.get("cost", 1), smallest.capacity)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    return Policy(name, smallest, cost, configs if len(configs) > 1 else ())


def _parse_bucket(raw: Any, label: str, allowed: frozenset[str]) -> RateLimitConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{label} must be a dict with capacity and refill_rate, got {raw!r}")
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(
            f"{label}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    missing = {"capacity", "refill_rate"} - set(raw)
    if missing:
        raise ConfigError(f"{label}: missing {sorted(missing)}")
    try:
        return RateLimitConfig(raw["capacity"], raw["refill_rate"])
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None


def _parse_buckets(raw: Mapping[str, Any], label: str) -> tuple[RateLimitConfig, ...]:
    unknown = set(raw) - _COMPOSITE_KEYS
    if unknown:
        raise ConfigError(
            f"{label}: unknown key(s) {sorted(unknown)} beside 'buckets'; allowed: buckets, cost"
        )
    buckets = raw["buckets"]
    if isinstance(buckets, (str, bytes, Mapping)) or not isinstance(buckets, Iterable):
        raise ConfigError(f"{label}['buckets'] must be a list of bucket dicts, got {buckets!r}")
    configs = tuple(
        _parse_bucket(bucket, f"{label}['buckets'][{i}]", _POLICY_KEYS - {"cost"})
        for i, bucket in enumerate(buckets)
    )
    if not configs:
        raise ConfigError(f"{label}['buckets'] is empty: give at least one bucket")
    return configs


def _flag(raw: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}['{key}'] must be True or False, got {value!r}")
    return value


def parse_settings(
    raw: Mapping[str, Any] | None,
    *,
    extra_keys: Iterable[str] = (),
    where: str = "RATELIMIT",
) -> Settings:
    """Validate a settings dict; ``extra_keys`` are framework-specific keys left to the caller."""
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a dict, got {type(raw).__name__}")
    allowed = COMMON_KEYS | set(extra_keys)
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    try:
        prefix = check_prefix(raw.get("KEY_PREFIX", "rl"))
    except ConfigError as exc:
        raise ConfigError(f"{where}['KEY_PREFIX']: {exc}") from None
    mode = raw.get("ON_STORE_ERROR", "fallback")
    if mode not in FAILURE_MODES:
        raise ConfigError(
            f"{where}['ON_STORE_ERROR'] must be one of {list(FAILURE_MODES)}, got {mode!r}"
        )
    retry = raw.get("RETRY_INTERVAL", 1.0)
    if (
        isinstance(retry, bool)
        or not isinstance(retry, (int, float))
        or not (math.isfinite(retry) and retry >= 0)
    ):
        raise ConfigError(
            f"{where}['RETRY_INTERVAL'] must be a number of seconds >= 0, got {retry!r}"
        )
    proxies = raw.get("TRUSTED_PROXY_COUNT", 0)
    if isinstance(proxies, bool) or not isinstance(proxies, int) or proxies < 0:
        raise ConfigError(f"{where}['TRUSTED_PROXY_COUNT'] must be an int >= 0, got {proxies!r}")
    raw_policies = raw.get("POLICIES", {"default": {"capacity": 5, "refill_rate": 1.0}})
    if not isinstance(raw_policies, Mapping):
        raise ConfigError(
            f"{where}['POLICIES'] must be a dict of name -> policy, got {raw_policies!r}"
        )
    policies = {name: parse_policy(name, value, where) for name, value in raw_policies.items()}
    return Settings(
        policies=policies,
        key_prefix=prefix,
        on_store_error=mode,
        retry_interval=float(retry),
        trusted_proxy_count=proxies,
        legacy_headers=_flag(raw, "LEGACY_HEADERS", True, where),
        ietf_headers=_flag(raw, "IETF_HEADERS", True, where),
        extra={key: raw[key] for key in raw if key not in COMMON_KEYS},
    )


def default_policy(settings: Settings, where: str = "RATELIMIT") -> str | None:
    """The ``DEFAULT_POLICY`` applied to every view, checked against the policies."""
    name = settings.extra.get("DEFAULT_POLICY")
    if name is None:
        return None
    try:
        settings.policy(name)
    except (ConfigError, TypeError):
        known = ", ".join(sorted(settings.policies)) or "none"
        raise ConfigError(
            f"{where}['DEFAULT_POLICY'] names unknown policy {name!r} (configured: {known})"
        ) from None
    return str(name)


def make_limiters(settings: Settings, store: SyncStore) -> dict[str, TokenBucketRateLimiter]:
    """One limiter per policy over one store, sharing one failure handler (one warning
    per incident, one back-off)."""
    return _limiters(TokenBucketRateLimiter, settings, store)


def make_async_limiters(
    settings: Settings, store: AsyncStore
) -> dict[str, AsyncTokenBucketRateLimiter]:
    return _limiters(AsyncTokenBucketRateLimiter, settings, store)


def _limiters(kind: type[L], settings: Settings, store: Any) -> dict[str, L]:
    failure = StoreFailureHandler(settings.on_store_error, retry_interval=settings.retry_interval)
    return {
        name: kind(
            policy.configs,
            store,
            name=name,
            key_prefix=settings.key_prefix,
            on_store_error=failure,
        )
        for name, policy in settings.policies.items()
    }
