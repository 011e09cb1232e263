"""One named policy: the ``Policy`` record and the parser of its dict.

A policy is ``{"capacity", "refill_rate"}``, a composite ``{"buckets": [...]}`` or a tiered
``{"tiers": {...}}``, plus the rule keys any policy may carry (cost, mode, key, charging).
The settings reader (``settings.py``) calls ``read_policy`` once per entry of
``POLICIES``; every bad bucket, tier and rule key is reported with the setting it names,
not only the first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .config import (
    ConfigError,
    Problem,
    RateLimitConfig,
    check_cost,
    check_plain_name,
    check_policy_name,
)
from .outcomes import Charging, check_charging
from .request_keys import KeyRule, TierRule, check_key, tier_rule

__all__ = ["MODES", "Policy", "check_mode", "parse_policy", "read_policy"]

T = TypeVar("T")
_BUCKET_KEYS = frozenset({"capacity", "refill_rate"})
# What any policy may say beside its buckets: who is charged, when a charge counts.
_RULE_KEYS = frozenset(
    {"cost", "mode", "key", "on_missing_key", "deduct_when", "charge_on_status"}
)
_POLICY_KEYS = _BUCKET_KEYS | _RULE_KEYS
_COMPOSITE_KEYS = _RULE_KEYS | {"buckets"}
_TIERED_KEYS = _RULE_KEYS | {"tiers", "tier", "default_tier"}
#: enforce: denials are refused; shadow: decided and stored the same, reported, let through.
MODES = ("enforce", "shadow")


@dataclass(frozen=True, slots=True)
class Policy:
    """A named set of buckets (usually one) and the default cost of one request.

    A composite policy has several buckets, all of which must admit a request; the
    smallest one bounds the cost.
    """

    name: str
    configs: tuple[RateLimitConfig, ...]  # a tiered policy's: its default tier's
    cost: float = 1.0
    mode: str | None = None  # None: the settings' MODE
    key: KeyRule | None = None  # None: the integration's default
    tiers: Mapping[str, tuple[RateLimitConfig, ...]] = field(default_factory=dict)
    tier: TierRule | None = None  # set exactly when ``tiers`` is
    charging: Charging | None = None  # None: every answer is charged

    @property
    def smallest(self) -> RateLimitConfig:
        """The smallest bucket of any tier: it bounds the cost."""
        every = [c for configs in (self.configs, *self.tiers.values()) for c in configs]
        return min(every, key=lambda c: c.capacity)

    @property
    def composite(self) -> bool:
        return len(self.configs) > 1

    def check_cost(self, cost: Any) -> float:
        return self.smallest.check_cost(cost)


def check_mode(value: Any) -> str:
    if value not in MODES:
        raise ConfigError(f"must be one of {list(MODES)}, got {value!r}", kind=Problem.MODE)
    return str(value)


def _bucket(raw: Any, label: str, allowed: frozenset[str]) -> RateLimitConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{label} must be a dict with capacity and refill_rate, got {raw!r}",
            kind=Problem.POLICY,
            setting=label,
        )
    unknown, missing = set(raw) - allowed, _BUCKET_KEYS - set(raw)
    if unknown or missing:
        found = f"unknown key(s) {sorted(unknown)}" if unknown else f"missing {sorted(missing)}"
        raise ConfigError(
            f"{label}: {found}; allowed: {', '.join(sorted(allowed))}",
            kind=Problem.POLICY,
            setting=label,
        )
    try:
        return RateLimitConfig(raw["capacity"], raw["refill_rate"])
    except ConfigError as exc:
        raise exc.at(label) from None


def _bucket_list(raw: Mapping[str, Any], label: str) -> list[Any]:
    unknown = set(raw) - _COMPOSITE_KEYS
    if unknown:
        raise ConfigError(
            f"{label}: unknown key(s) {sorted(unknown)} beside 'buckets'; "
            f"allowed: {', '.join(sorted(_COMPOSITE_KEYS))}",
            kind=Problem.POLICY,
            setting=label,
        )
    listed = raw["buckets"]
    if not isinstance(listed, (list, tuple)):
        raise ConfigError(
            f"{label}['buckets'] must be a list of bucket dicts, got {listed!r}",
            kind=Problem.POLICY,
            setting=label,
        )
    if not listed:
        raise ConfigError(
            f"{label}['buckets'] is empty: give at least one bucket",
            kind=Problem.POLICY,
            setting=label,
        )
    return list(listed)


def _policy_buckets(raw: Any, label: str, errors: list[ConfigError]) -> list[RateLimitConfig]:
    """The buckets of one policy; every bad bucket is reported, not only the first."""
    if not isinstance(raw, Mapping) or "buckets" not in raw:
        return [_bucket(raw, label, _POLICY_KEYS)]
    configs = []
    for i, bucket in enumerate(_bucket_list(raw, label)):
        try:
            configs.append(_bucket(bucket, f"{label}['buckets'][{i}]", _BUCKET_KEYS))
        except ConfigError as exc:
            errors.append(exc)
    return configs if len(errors) == 0 else []


def _policy_mode(raw: Mapping[str, Any], label: str) -> str | None:
    try:
        return None if raw.get("mode") is None else check_mode(raw["mode"])
    except ConfigError as exc:
        raise exc.at(f"{label}['mode']") from None


def read_policy(name: Any, raw: Any, where: str, errors: list[ConfigError]) -> Policy | None:
    """One policy, or None after adding its problems to ``errors``."""
    label = f"{where}['POLICIES'][{name!r}]"
    found: list[ConfigError] = []
    try:
        check_policy_name(name)
        if isinstance(raw, Mapping) and "tiers" in raw:
            tiers = _tiers(raw, label, found)
            fallback = next(iter(tiers.values()), ())  # _policy reports a bad default_tier
            configs = tiers.get(str(raw.get("default_tier")), fallback)
        else:
            tiers, configs = {}, tuple(_policy_buckets(raw, label, found))
        if configs:
            return _policy(name, raw, label, configs, tiers)
    except ConfigError as exc:
        found.append(exc if exc.setting else exc.at(label))
    errors.extend(found)
    return None


def _policy(
    name: str,
    raw: Mapping[str, Any],
    label: str,
    configs: tuple[RateLimitConfig, ...],
    tiers: dict[str, tuple[RateLimitConfig, ...]],
) -> Policy:
    """The checked policy: its rule keys read, each error naming its own key."""
    smallest = min((c for cs in (configs, *tiers.values()) for c in cs), key=lambda c: c.capacity)
    cost = check_cost(raw.get("cost", 1), smallest.capacity)
    key = _at(label, "key", lambda: _key(raw))
    tier = None
    if tiers:
        tier = _at(
            label, "tier", lambda: tier_rule(raw.get("tier"), tiers, _default_tier(raw, tiers))
        )
    charging = _charging(raw, label)
    mode = _policy_mode(raw, label)
    return Policy(name, configs, cost, mode, key, tiers, tier, charging)


def _at(label: str, key: str, read: Callable[[], T]) -> T:
    try:
        return read()
    except ConfigError as exc:
        raise exc.at(f"{label}['{key}']") from None


def _charging(raw: Mapping[str, Any], label: str) -> Charging | None:
    """``deduct_when`` and ``charge_on_status``, each error naming its own key."""
    when = _at(label, "deduct_when", lambda: check_charging(raw.get("deduct_when")))
    status = _at(
        label, "charge_on_status", lambda: check_charging(None, raw.get("charge_on_status"))
    )
    if when is None or status is None:
        return when or status
    return Charging(when.deduct_when, status.statuses)


def _key(raw: Mapping[str, Any]) -> KeyRule | None:
    if "key" not in raw:
        if "on_missing_key" in raw:
            raise ConfigError("on_missing_key is set but no key is", kind=Problem.KEY)
        return None
    return check_key(raw["key"], raw.get("on_missing_key", "next"))


def _default_tier(raw: Mapping[str, Any], tiers: Mapping[str, Any]) -> Any:
    return raw.get("default_tier", next(iter(tiers)))


def _tiers(
    raw: Mapping[str, Any], label: str, errors: list[ConfigError]
) -> dict[str, tuple[RateLimitConfig, ...]]:
    """``{"free": {bucket}, "pro": {"buckets": [...]}}``; every bad tier is reported."""
    unknown = set(raw) - _TIERED_KEYS
    listed = raw["tiers"]
    if unknown or not isinstance(listed, Mapping) or not listed:
        why = (
            f"unknown key(s) {sorted(unknown)} beside 'tiers'"
            if unknown
            else (f"['tiers'] must be a non-empty dict of tier name -> buckets, got {listed!r}")
        )
        raise ConfigError(f"{label}: {why}", kind=Problem.TIERS, setting=label)
    tiers: dict[str, tuple[RateLimitConfig, ...]] = {}
    for tier, buckets in listed.items():
        where = f"{label}['tiers'][{tier!r}]"
        try:
            check_plain_name(tier, "tier name", Problem.TIERS)
            found: list[ConfigError] = []
            tiers[tier] = tuple(_policy_buckets(_bare(buckets, where), where, found))
            errors.extend(found)
        except ConfigError as exc:
            errors.append(exc if exc.setting else exc.at(where))
    return tiers if len(tiers) == len(listed) else {}


def _bare(buckets: Any, where: str) -> Any:
    """A tier holds buckets only: the rule keys belong to the policy."""
    if isinstance(buckets, Mapping) and set(buckets) & _RULE_KEYS:
        raise ConfigError(
            f"{sorted(set(buckets) & _RULE_KEYS)} belong to the policy, not to one tier",
            kind=Problem.TIERS,
        )
    return buckets


def parse_policy(name: Any, raw: Any, where: str = "RATELIMIT") -> Policy:
    """``{"capacity", "refill_rate", "cost"?}``, or ``{"buckets": [...], "cost"?}`` for a
    composite policy whose buckets must all admit a request."""
    errors: list[ConfigError] = []
    policy = read_policy(name, raw, where, errors)
    if policy is None:
        raise errors[0]
    return policy
