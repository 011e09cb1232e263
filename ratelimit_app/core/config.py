"""Bucket configuration and the validation every entry point shares.

Validation lives here, framework-free, so Django settings, Flask's ``app.config`` and
FastAPI start-up all reject the same bad values with the same words.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConfigError", "RateLimitConfig", "check_cost", "check_policy_name"]

_POLICY_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Longest key lifetime we ask a store for (~68 years): a bucket untouched that long is
# treated as full, which only matters for rates so small they never refill anyway.
MAX_TTL = 2**31


class ConfigError(ValueError):
    """A rate-limit setting or argument that can never work; the message names it."""


def _positive_finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """A bucket of ``capacity`` tokens refilled at ``refill_rate`` tokens per second."""

    capacity: float
    refill_rate: float
    #: Seconds after which an untouched bucket is full, so storing it longer is waste.
    ttl: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        capacity = _positive_finite("capacity", self.capacity)
        rate = _positive_finite("refill_rate", self.refill_rate)
        full_after = capacity / rate
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
    if isinstance(cost, bool) or not isinstance(cost, (int, float)):
        raise ConfigError(f"cost must be a number, got {cost!r}")
    if not math.isfinite(cost) or cost < 0:
        raise ConfigError(f"cost must be a finite number >= 0, got {cost!r}")
    if cost > capacity:
        raise ConfigError(
            f"cost {cost!r} exceeds capacity {capacity!r}: such a request could never pass"
        )
    return float(cost)


def check_policy_name(name: Any) -> str:
    """Policy names become part of cache keys and header values, so keep them plain."""
    if not isinstance(name, str) or not _POLICY_NAME.match(name):
        raise ConfigError(
            f"policy name {name!r} must be 1-64 characters of letters, digits, '_', '.', '-'"
        )
    return name
