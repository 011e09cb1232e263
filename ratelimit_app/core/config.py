"""Bucket configuration and the validation every entry point shares.

Validation lives here, framework-free, so Django settings, Flask's ``app.config`` and
FastAPI start-up all reject the same bad values with the same words. A ``ConfigError``
also says *where* the bad value sits and *what kind* of problem it is, so Django's system
checks can give each problem its stable id without parsing the settings a second time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "CLIENT_CLOCK_MIN_TTL",
    "MAX_HEADER_INT",
    "MAX_TTL",
    "ConfigError",
    "Problem",
    "RateLimitConfig",
    "check_cost",
    "check_count",
    "check_number",
    "check_plain_name",
    "check_policy_name",
]

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Longest key lifetime we ask a store for (~68 years): a bucket untouched that long is
# treated as full, which only matters for rates so small they never refill anyway.
MAX_TTL = 2**31
# Shortest key lifetime for state written on a clock of the caller's own (``clock=``):
# a store's expiry runs on real time, which such a clock need not follow.
CLIENT_CLOCK_MIN_TTL = 3600
# The largest integer a Structured-Fields header may carry (RFC 9651, 3.3.1: 15 digits).
# Capacities and refill times are bounded by it, so every header value we render (limit,
# remaining, reset, window, Retry-After) is a finite integer a client can parse.
MAX_HEADER_INT = 10**15 - 1


class Problem(StrEnum):
    """What is wrong with a setting; Django's checks map each to one stable id."""

    SETTINGS = "settings"  # not a dict, or a key nobody knows
    POLICY = "policy"  # a malformed policy: bad name, not a dict, bad or missing keys
    BUCKET = "bucket"  # capacity or refill_rate
    COST = "cost"
    CACHE = "cache"
    FAILURE_MODE = "failure_mode"
    PROXIES = "proxies"  # TRUSTED_PROXY_COUNT
    PROXY_NETWORKS = "proxy_networks"  # TRUSTED_PROXIES, or both ways of trusting at once
    PROXY_HEADER = "proxy_header"
    IPV6_PREFIX = "ipv6_prefix"
    KEY_PREFIX = "key_prefix"
    RETRY_INTERVAL = "retry_interval"
    FLAG = "flag"
    UNKNOWN_POLICY = "unknown_policy"
    STORAGE = "storage"  # Flask/FastAPI storage URL and connection settings
    STORE = "store"  # Django's RATELIMIT['STORE'] URL, or STORE beside CACHE
    VALUE = "value"  # an argument given in code rather than in settings
    MODE = "mode"  # MODE or a policy's "mode": enforce or shadow
    METRICS = "metrics"  # METRICS switched on without prometheus_client installed
    KEY = "key"  # a policy's or a view's key: an unknown kind, a bad name, a bad path
    TIERS = "tiers"  # tiers, their resolver ("tier") or default_tier
    EXEMPT = "exempt"  # EXEMPT (staff, superusers, ips) or an exempt_when
    CHARGE = "charge"  # deduct_when or charge_on_status
    GLOBAL = "global"  # DEFAULT_POLICY / EXEMPT_PATHS of the Django middleware


class ConfigError(ValueError):
    """A rate-limit setting or argument that can never work; the message names it.

    ``setting`` is where the value sits (``RATELIMIT['POLICIES']['api']``, or None for an
    argument given in code) and ``kind`` is the ``Problem``.
    """

    def __init__(
        self, message: str, *, kind: Problem = Problem.VALUE, setting: str | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.setting = setting

    def at(self, setting: str, kind: Problem | None = None) -> ConfigError:
        """The same problem, reported as found at ``setting`` (and re-classified)."""
        return ConfigError(f"{setting}: {self}", kind=kind or self.kind, setting=setting)


def check_number(
    value: Any,
    name: str,
    *,
    minimum: float = 0.0,
    inclusive: bool = False,
    maximum: float = math.inf,
    kind: Problem = Problem.VALUE,
) -> float:
    """``value`` as a float if it is a finite number above ``minimum`` (or equal to it
    when ``inclusive``) and at most ``maximum``; booleans and numeric strings are refused,
    not coerced."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}", kind=kind)
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    above = number >= minimum if inclusive else number > minimum
    if not (math.isfinite(number) and above and number <= maximum):
        bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
        if maximum < math.inf:
            bound += f" and <= {maximum:.15g}"
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}", kind=kind)
    return number


def check_count(value: Any, name: str, *, minimum: int = 1, kind: Problem = Problem.VALUE) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}", kind=kind)
    return value


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """A bucket of ``capacity`` tokens refilled at ``refill_rate`` tokens per second.

    The capacity is at least 1, so ``X-RateLimit-Limit`` (the capacity rounded down) never
    reads 0 while requests pass; it and the seconds a refill from empty takes are at most
    ``MAX_HEADER_INT``, so every header value stays a finite integer of 15 digits or less.
    """

    capacity: float
    refill_rate: float
    #: Seconds after which an untouched bucket is full, so storing it longer is waste.
    ttl: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        capacity = check_number(
            self.capacity, "capacity", minimum=1, inclusive=True, maximum=MAX_HEADER_INT,
            kind=Problem.BUCKET,
        )  # fmt: skip
        rate = check_number(self.refill_rate, "refill_rate", kind=Problem.BUCKET)
        full_after = capacity / rate
        if full_after > MAX_HEADER_INT:
            raise ConfigError(
                f"refill_rate {self.refill_rate!r} is too small for capacity "
                f"{self.capacity!r}: a refill from empty would take {full_after:.3g} s; "
                f"capacity / refill_rate must be at most {MAX_HEADER_INT} s",
                kind=Problem.BUCKET,
            )
        ttl = MAX_TTL if full_after >= MAX_TTL else max(1, math.ceil(full_after))
        object.__setattr__(self, "capacity", capacity)
        object.__setattr__(self, "refill_rate", rate)
        object.__setattr__(self, "ttl", ttl)

    def check_cost(self, cost: Any) -> float:
        kind = type(cost)
        if (kind is int or kind is float) and 0 <= cost <= self.capacity:  # per-request path
            return float(cost)
        return check_cost(cost, self.capacity)


def check_cost(cost: Any, capacity: float) -> float:
    """Return ``cost`` as a float or raise naming why it can never be served."""
    number = check_number(cost, "cost", inclusive=True, kind=Problem.COST)
    if number > capacity:
        raise ConfigError(
            f"cost {cost!r} exceeds capacity {capacity!r}: such a request could never pass",
            kind=Problem.COST,
        )
    return number


def check_plain_name(value: Any, what: str, kind: Problem) -> str:
    """Names that become part of cache keys and header values stay plain: 1-64 letters,
    digits, ``_``, ``.``, ``-`` (so never a ``:`` that would add a key segment)."""
    if not isinstance(value, str) or not _PLAIN_NAME.fullmatch(value):
        raise ConfigError(
            f"{what} {value!r} must be 1-64 characters of letters, digits, '_', '.', '-'",
            kind=kind,
        )
    return value


def check_policy_name(name: Any) -> str:
    return check_plain_name(name, "policy name", Problem.POLICY)
