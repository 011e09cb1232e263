"""The settings dict every framework reads, parsed in one place.

Django's ``settings.RATELIMIT``, Flask's ``app.config["RATELIMIT"]`` and the FastAPI
adapter's options share one shape and one parser, so a bad value is rejected with the
same message naming the same setting everywhere. The parser reads each key with its own
small helper and collects every problem (``settings_errors``), so Django's system checks
report all of them in one run; ``parse_settings`` raises the first. Each policy of
``POLICIES`` is read by ``policy.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .clients import (
    Proxies,
    check_ipv6_prefix,
    check_networks,
    check_proxy_count,
    check_proxy_header,
)
from .config import ConfigError, Problem
from .exemptions import NO_EXEMPTIONS, Exemptions, check_exempt
from .failure import FAILURE_MODES, check_retry_interval
from .keys import check_prefix
from .policy import Policy, check_mode, read_policy

__all__ = ["COMMON_KEYS", "Settings", "default_policy", "parse_settings", "settings_errors"]

DEFAULT_POLICIES = {"default": {"capacity": 5, "refill_rate": 1.0}}


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
    "MODE": (check_mode, "enforce"),
    "METRICS": (_metrics, False),
    "EXEMPT": (check_exempt, NO_EXEMPTIONS),
    "COALESCE": (_flag, True),
}
COMMON_KEYS = frozenset({*_READERS, "POLICIES"})
_PROXY_KEYS = {"TRUSTED_PROXY_COUNT", "TRUSTED_PROXIES", "PROXY_HEADER", "IPV6_PREFIX"}


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
    policies = {name: read_policy(name, value, where, errors) for name, value in raw.items()}
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
