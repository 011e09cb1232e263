"""Named policies and the settings dict every framework reads, parsed in one place.

Django's ``settings.RATELIMIT``, Flask's ``app.config["RATELIMIT"]`` and the FastAPI
adapter's options share one shape and one parser, so a bad value is rejected with the
same message naming the same setting everywhere. The parser reads each key with its own
small helper and collects every problem (``settings_errors``), so Django's system checks
report all of them in one run; ``parse_settings`` raises the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .clients import (
    Proxies,
    check_ipv6_prefix,
    check_networks,
    check_proxy_count,
    check_proxy_header,
)
from .config import (
    ConfigError,
    Problem,
    RateLimitConfig,
    check_cost,
    check_plain_name,
    check_policy_name,
)
from .exemptions import NO_EXEMPTIONS, Exemptions, check_exempt
from .failure import FAILURE_MODES, StoreFailureHandler, check_retry_interval
from .keys import check_prefix
from .limiter import AsyncTokenBucketRateLimiter, TokenBucketRateLimiter
from .outcomes import Charging, check_charging
from .request_keys import KeyRule, TierRule, check_key, tier_rule
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
DEFAULT_POLICIES = {"default": {"capacity": 5, "refill_rate": 1.0}}


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


@dataclass(frozen=True, slots=True)
class Settings:
    policies: Mapping[str, Policy]
    key_prefix: str = "rl"
    on_store_error: str = "fallback"
    retry_interval: float = 1.0
    trusted_proxy_count: int = 0
    legacy_headers: bool = True
    ietf_headers: bool = True
    mode: str = "enforce"
    metrics: bool = False
    #: Async Redis stores send concurrent decisions together (``stores/coalesce.py``).
    coalesce: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Who may report a client's address (TRUSTED_PROXIES / _COUNT, PROXY_HEADER, IPV6_PREFIX).
    proxies: Proxies = field(default_factory=Proxies)
    #: Clients never limited (EXEMPT: staff, superusers, networks).
    exempt: Exemptions = NO_EXEMPTIONS

    def shadow(self, name: str) -> bool:
        """Whether the named policy runs in shadow mode (its own mode, else MODE)."""
        return (self.policy(name).mode or self.mode) == "shadow"

    def policy(self, name: str) -> Policy:
        try:
            return self.policies[name]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self.policies)) or "none"
            raise ConfigError(
                f"unknown rate-limit policy {name!r} (configured: {known})",
                kind=Problem.UNKNOWN_POLICY,
            ) from None


def _failure_mode(value: Any) -> str:
    if value not in FAILURE_MODES:
        raise ConfigError(
            f"must be one of {list(FAILURE_MODES)}, got {value!r}", kind=Problem.FAILURE_MODE
        )
    return str(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"must be True or False, got {value!r}", kind=Problem.FLAG)
    return value


def _mode(value: Any) -> str:
    if value not in MODES:
        raise ConfigError(f"must be one of {list(MODES)}, got {value!r}", kind=Problem.MODE)
    return str(value)


def _metrics(value: Any) -> bool:
    """METRICS = True needs prometheus_client, checked now rather than at the first request."""
    if _flag(value):
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            raise ConfigError(
                "is True but prometheus_client is not installed "
                "(pip install 'ratelimit-app[prometheus]')",
                kind=Problem.METRICS,
            ) from None
    return bool(value)


# Each common key: the helper that reads it and the default when it is absent.
_READERS: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "KEY_PREFIX": (check_prefix, "rl"),
    "ON_STORE_ERROR": (_failure_mode, "fallback"),
    "RETRY_INTERVAL": (check_retry_interval, 1.0),
    "TRUSTED_PROXY_COUNT": (check_proxy_count, 0),
    "TRUSTED_PROXIES": (check_networks, ()),
    "PROXY_HEADER": (check_proxy_header, "X-Forwarded-For"),
    "IPV6_PREFIX": (check_ipv6_prefix, 64),
    "LEGACY_HEADERS": (_flag, True),
    "IETF_HEADERS": (_flag, True),
    "MODE": (_mode, "enforce"),
    "METRICS": (_metrics, False),
    "EXEMPT": (check_exempt, NO_EXEMPTIONS),
    "COALESCE": (_flag, True),
}
COMMON_KEYS = frozenset({*_READERS, "POLICIES"})
_PROXY_KEYS = {"TRUSTED_PROXY_COUNT", "TRUSTED_PROXIES", "PROXY_HEADER", "IPV6_PREFIX"}


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
        return None if raw.get("mode") is None else _mode(raw["mode"])
    except ConfigError as exc:
        raise exc.at(f"{label}['mode']") from None


def _read_policy(name: Any, raw: Any, where: str, errors: list[ConfigError]) -> Policy | None:
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
    policy = _read_policy(name, raw, where, errors)
    if policy is None:
        raise errors[0]
    return policy


def _read_policies(raw: Any, where: str, errors: list[ConfigError]) -> dict[str, Policy]:
    if not isinstance(raw, Mapping):
        errors.append(
            ConfigError(
                f"{where}['POLICIES'] must be a dict of name -> policy, got {raw!r}",
                kind=Problem.POLICY,
                setting=f"{where}['POLICIES']",
            )
        )
        return {}
    policies = {name: _read_policy(name, value, where, errors) for name, value in raw.items()}
    return {name: policy for name, policy in policies.items() if policy is not None}


def _read(
    raw: Any, extra_keys: Iterable[str], where: str
) -> tuple[Settings | None, list[ConfigError]]:
    """The settings and every problem found on the way (settings are None if any)."""
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        message = f"{where} must be a dict, got {type(raw).__name__}"
        return None, [ConfigError(message, kind=Problem.SETTINGS, setting=where)]
    errors: list[ConfigError] = []
    unknown = set(raw) - COMMON_KEYS - set(extra_keys)
    if unknown:
        allowed = sorted(COMMON_KEYS | set(extra_keys))
        message = f"{where}: unknown setting(s) {sorted(unknown)}; allowed: {allowed}"
        errors.append(ConfigError(message, kind=Problem.SETTINGS, setting=where))
    values: dict[str, Any] = {}
    for key, (read, default) in _READERS.items():
        try:
            values[key] = read(raw[key]) if key in raw else default
        except ConfigError as exc:
            errors.append(exc.at(f"{where}['{key}']"))
    policies = _read_policies(raw.get("POLICIES", DEFAULT_POLICIES), where, errors)
    proxies = _proxies(values, where, errors)
    if errors or proxies is None:
        return None, errors
    return Settings(
        policies=policies,
        key_prefix=values["KEY_PREFIX"],
        on_store_error=values["ON_STORE_ERROR"],
        retry_interval=values["RETRY_INTERVAL"],
        trusted_proxy_count=values["TRUSTED_PROXY_COUNT"],
        legacy_headers=values["LEGACY_HEADERS"],
        ietf_headers=values["IETF_HEADERS"],
        mode=values["MODE"],
        metrics=values["METRICS"],
        coalesce=values["COALESCE"],
        extra={key: raw[key] for key in raw if key not in COMMON_KEYS},
        proxies=proxies,
        exempt=values["EXEMPT"],
    ), []


def _proxies(values: Mapping[str, Any], where: str, errors: list[ConfigError]) -> Proxies | None:
    """The proxy settings as one rule; trusting by count and by network at once is refused
    (which one would win is not obvious, and guessing wrong lets clients pick buckets)."""
    if not _PROXY_KEYS <= values.keys():
        return None  # a bad value, already reported
    count, networks = values["TRUSTED_PROXY_COUNT"], values["TRUSTED_PROXIES"]
    if count and networks:
        message = "set TRUSTED_PROXIES or TRUSTED_PROXY_COUNT, not both"
        problem = ConfigError(message, kind=Problem.PROXY_NETWORKS)
        errors.append(problem.at(f"{where}['TRUSTED_PROXIES']"))
        return None
    return Proxies(count, networks, values["PROXY_HEADER"], values["IPV6_PREFIX"])


def settings_errors(
    raw: Any, *, extra_keys: Iterable[str] = (), where: str = "RATELIMIT"
) -> list[ConfigError]:
    """Every problem in a settings dict (empty when it parses)."""
    return _read(raw, extra_keys, where)[1]


def parse_settings(
    raw: Any, *, extra_keys: Iterable[str] = (), where: str = "RATELIMIT"
) -> Settings:
    """Validate a settings dict; ``extra_keys`` are framework-specific keys left to the
    caller (in ``Settings.extra``). Raises the first ``ConfigError`` found."""
    settings, errors = _read(raw, extra_keys, where)
    if settings is None:
        raise errors[0]
    return settings


def default_policy(settings: Settings, where: str = "RATELIMIT") -> str | None:
    """The ``DEFAULT_POLICY`` applied to every view, checked against the policies."""
    name = settings.extra.get("DEFAULT_POLICY")
    if name is None:
        return None
    try:
        return settings.policy(name).name
    except ConfigError as exc:
        raise exc.at(f"{where}['DEFAULT_POLICY']") from None


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
