"""System checks: every wrong ``RATELIMIT`` setting fails ``manage.py check``.

Each problem has its own stable id (never renumbered) and a hint saying what to write.
The settings are validated piece by piece with the core's own validators, so one run
reports every mistake, not only the first one ``parse_settings`` would stop at.

======================  ==========================================================
id                      problem
======================  ==========================================================
ratelimit.E001          RATELIMIT is not a dict, or has a key we do not know
ratelimit.E002          POLICIES is malformed (not a dict, bad name, bad/missing key)
ratelimit.E003          a policy's capacity or refill_rate is not a finite number > 0
ratelimit.E004          a policy's or view's cost is invalid or above the capacity
ratelimit.E005          CACHE is not an alias in CACHES
ratelimit.E006          ON_STORE_ERROR is not fallback/allow/deny/raise
ratelimit.E007          TRUSTED_PROXY_COUNT is not an int >= 0
ratelimit.E008          KEY_PREFIX is not 1-64 plain characters
ratelimit.E009          RETRY_INTERVAL is not a number of seconds >= 0
ratelimit.E010          LEGACY_HEADERS or IETF_HEADERS is not a bool
ratelimit.E011          a view or decorator names a policy that is not configured
ratelimit.W001          the cache backend cannot make decisions atomic across processes
ratelimit.W002          (--deploy) local-memory buckets are per process
======================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.conf import settings as django_settings
from django.core import checks
from django.core.cache import caches

from .cache_store import backend_kind
from .conf import DEFAULT_CACHE, EXTRA_KEYS, raw_settings
from .core.config import ConfigError, RateLimitConfig, check_cost, check_policy_name
from .core.policies import COMMON_KEYS, parse_settings
from .views_scan import limited_views

__all__ = ["check_cache", "check_deploy_cache", "check_settings", "check_views", "register"]

_HINTS = {
    "E001": "Allowed keys: CACHE, " + ", ".join(sorted(COMMON_KEYS)) + ".",
    "E002": 'Write POLICIES = {"name": {"capacity": 5, "refill_rate": 1.0, "cost": 1}}.',
    "E003": "capacity (tokens) and refill_rate (tokens per second) must be numbers > 0.",
    "E004": "A cost is a number >= 0 and at most the policy's capacity.",
    "E005": "Set RATELIMIT['CACHE'] to one of the aliases in CACHES.",
    "E006": "Use one of 'fallback' (default), 'allow', 'deny', 'raise'.",
    "E007": "The number of reverse proxies in front of the app; 0 if clients connect directly.",
    "E008": "Letters, digits, '_', '.', '-'; it starts every cache key.",
    "E009": "Seconds to wait before retrying a failed store, e.g. 1.0.",
    "E010": "True or False.",
    "E011": "Add the policy to RATELIMIT['POLICIES'] or fix the name in the view.",
}
# Single settings whose parse error belongs to one id.
_SCALARS = {
    "KEY_PREFIX": "E008",
    "ON_STORE_ERROR": "E006",
    "RETRY_INTERVAL": "E009",
    "TRUSTED_PROXY_COUNT": "E007",
    "LEGACY_HEADERS": "E010",
    "IETF_HEADERS": "E010",
}


def _error(code: str, message: str) -> checks.Error:
    return checks.Error(message, hint=_HINTS[code], id=f"ratelimit.{code}")


def check_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    raw = raw_settings()
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [_error("E001", f"RATELIMIT must be a dict, got {type(raw).__name__}.")]
    errors: list[checks.CheckMessage] = []
    unknown = sorted(set(raw) - COMMON_KEYS - set(EXTRA_KEYS))
    if unknown:
        errors.append(_error("E001", f"RATELIMIT has unknown setting(s) {unknown}."))
    for key, code in _SCALARS.items():
        if key in raw:
            try:
                parse_settings({key: raw[key]})
            except ConfigError as exc:
                errors.append(_error(code, str(exc)))
    errors.extend(_policy_errors(raw.get("POLICIES")))
    return errors


def _policy_errors(policies: Any) -> Iterator[checks.Error]:
    if policies is None:
        return
    if not isinstance(policies, Mapping):
        yield _error("E002", f"RATELIMIT['POLICIES'] must be a dict, got {policies!r}.")
        return
    for name, raw in policies.items():
        yield from _one_policy(name, raw)


def _one_policy(name: Any, raw: Any) -> Iterator[checks.Error]:
    """One policy: a single bucket, or ``{"buckets": [...], "cost"?}`` (composite)."""
    label = f"RATELIMIT['POLICIES'][{name!r}]"
    try:
        buckets = _policy_shape(name, raw)
    except ConfigError as exc:
        yield _error("E002", f"{label}: {exc}")
        return
    configs = []
    for where, bucket in buckets:
        try:
            configs.append(RateLimitConfig(bucket["capacity"], bucket["refill_rate"]))
        except ConfigError as exc:
            yield _error("E003", f"{label}{where}: {exc}")
    if len(configs) != len(buckets):
        return
    try:
        check_cost(raw.get("cost", 1), min(config.capacity for config in configs))
    except ConfigError as exc:
        yield _error("E004", f"{label}: {exc}")


def _policy_shape(name: Any, raw: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """The bucket dicts of a well-formed policy, each with where it sits, or ConfigError."""
    check_policy_name(name)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"must be a dict with capacity and refill_rate, got {raw!r}")
    if "buckets" in raw:
        extra = sorted(set(raw) - {"buckets", "cost"})
        if extra:
            raise ConfigError(f"unknown key(s) {extra} beside 'buckets'")
        listed = raw["buckets"]
        if not isinstance(listed, (list, tuple)) or not listed:
            raise ConfigError(f"'buckets' must be a non-empty list of dicts, got {listed!r}")
        buckets = [(f"['buckets'][{i}]", bucket) for i, bucket in enumerate(listed)]
        allowed = {"capacity", "refill_rate"}
    else:
        buckets, allowed = [("", raw)], {"capacity", "refill_rate", "cost"}
    for where, bucket in buckets:
        if not isinstance(bucket, Mapping):
            raise ConfigError(f"{where} must be a dict with capacity and refill_rate")
        extra = sorted(set(bucket) - allowed)
        missing = sorted({"capacity", "refill_rate"} - set(bucket))
        if extra or missing:
            raise ConfigError(f"{where} unknown key(s) {extra}, missing {missing}".lstrip())
    return buckets


def check_cache(**kwargs: Any) -> list[checks.CheckMessage]:
    raw = raw_settings()
    alias = raw.get("CACHE", DEFAULT_CACHE) if isinstance(raw, Mapping) else DEFAULT_CACHE
    if not isinstance(alias, str) or alias not in django_settings.CACHES:
        known = sorted(django_settings.CACHES)
        return [_error("E005", f"RATELIMIT['CACHE'] = {alias!r} is not in CACHES {known}.")]
    kind = backend_kind(caches[alias])
    if kind != "other":
        return []
    backend = django_settings.CACHES[alias].get("BACKEND")
    return [
        checks.Warning(
            f"Cache {alias!r} ({backend}) has no atomic operation ratelimit_app can use: "
            "buckets are read and written separately, so concurrent processes can "
            "admit more requests than the limit.",
            hint="Use django-redis or django.core.cache.backends.redis.RedisCache "
            "(one Lua script per decision), or LocMemCache for a single process.",
            id="ratelimit.W001",
        )
    ]


def check_deploy_cache(**kwargs: Any) -> list[checks.CheckMessage]:
    """Only with ``check --deploy``: locmem is right for development and one process."""
    raw = raw_settings()
    alias = raw.get("CACHE", DEFAULT_CACHE) if isinstance(raw, Mapping) else DEFAULT_CACHE
    if alias not in django_settings.CACHES or backend_kind(caches[alias]) != "locmem":
        return []
    return [
        checks.Warning(
            f"Cache {alias!r} is local memory: each server process keeps its own buckets, "
            "so N worker processes admit up to N times the configured limit.",
            hint="Point RATELIMIT['CACHE'] at a Redis cache when running several processes.",
            id="ratelimit.W002",
        )
    ]


def check_views(**kwargs: Any) -> list[checks.CheckMessage]:
    """Policies and costs named by views reachable from the URLconf."""
    try:
        parsed = parse_settings(raw_settings(), extra_keys=EXTRA_KEYS)
    except ConfigError:
        return []  # already reported by check_settings
    errors: list[checks.CheckMessage] = []
    for where, policy_name, costs in limited_views():
        policy = parsed.policies.get(policy_name)
        if policy is None:
            known = sorted(parsed.policies)
            errors.append(
                _error("E011", f"{where} uses rate-limit policy {policy_name!r}; have {known}.")
            )
            continue
        for cost in costs:
            try:
                policy.check_cost(cost)
            except ConfigError as exc:
                errors.append(_error("E004", f"{where} (policy {policy_name!r}): {exc}"))
    return errors


def register() -> None:
    checks.register(check_settings, "ratelimit")
    checks.register(check_cache, "ratelimit", "caches")
    checks.register(check_deploy_cache, "ratelimit", "caches", deploy=True)
    checks.register(check_views, "ratelimit", "urls")
