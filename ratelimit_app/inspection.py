"""Bucket state for people: shared by the admin page and ``manage.py ratelimit``.

Rows report tokens *now* (the store's ``peek`` applies the refill with the store's own
clock, so Redis rows use Redis time) and seconds until the bucket is full.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from itertools import islice

from .conf import Runtime, get_runtime
from .core.config import ConfigError

__all__ = [
    "MAX_LISTED",
    "BucketRow",
    "PolicyRow",
    "identity_buckets",
    "live_keys",
    "policy_rows",
    "reset_identity",
    "reset_key",
    "rows_for_keys",
]

MAX_LISTED = 10_000
_COMPOSITE_KEY = re.compile(
    r"^\{(.+)\}:(\d+)$"
)  # keys gathered for one listing; a SCAN beyond that is cut short


@dataclass(frozen=True)
class PolicyRow:
    name: str
    capacity: float
    refill_rate: float
    cost: float
    seconds_to_full: float


@dataclass(frozen=True)
class BucketRow:
    key: str
    policy: str
    identity: str
    tokens: float
    capacity: float
    seconds_to_full: float
    stored: bool = True


def policy_rows(runtime: Runtime | None = None) -> list[PolicyRow]:
    runtime = runtime or get_runtime()
    return [
        PolicyRow(
            name, p.config.capacity, p.config.refill_rate, p.cost,
            p.config.capacity / p.config.refill_rate,
        )
        for name, p in sorted(runtime.settings.policies.items())
    ]  # fmt: skip


def split_key(key: str, runtime: Runtime) -> tuple[str, str, int] | None:
    """``(policy, identity, bucket index)`` for one of our keys with a configured policy,
    else None. A composite policy's keys are ``<prefix>:<policy>:{<identity>}:<index>``."""
    prefix, sep, rest = key.partition(":")
    policy, sep2, identity = rest.partition(":")
    if prefix != runtime.settings.key_prefix or not (sep and sep2):
        return None
    found = runtime.settings.policies.get(policy)
    if found is None:
        return None
    if not found.buckets:
        return policy, identity, 0
    tagged = _COMPOSITE_KEY.match(identity)
    if tagged is None or int(tagged[2]) >= len(found.buckets):
        return None
    return policy, tagged[1], int(tagged[2])


def live_keys(runtime: Runtime | None = None) -> list[str]:
    """Stored bucket keys under our prefix, sorted (raises ``StoreError``)."""
    runtime = runtime or get_runtime()
    found = runtime.store.scan(runtime.settings.key_prefix + ":")
    keys = (key for key, _state in found if split_key(key, runtime))
    return sorted(islice(keys, MAX_LISTED))


def _row(runtime: Runtime, key: str, stored: bool = True) -> BucketRow:
    policy, identity, index = split_key(key, runtime) or ("?", key, 0)
    config = runtime.policy(policy).configs[index]
    decision = runtime.store.peek(key, config)
    return BucketRow(
        key, policy, identity, decision.remaining, config.capacity, decision.reset_after, stored
    )


def rows_for_keys(keys: list[str], runtime: Runtime | None = None) -> list[BucketRow]:
    runtime = runtime or get_runtime()
    return [_row(runtime, key) for key in keys]


def identity_buckets(identity: str, runtime: Runtime | None = None) -> list[BucketRow]:
    """One row per policy for ``identity`` (e.g. ``ip:10.0.0.1`` or ``user:42``)."""
    runtime = runtime or get_runtime()
    rows = []
    for name in sorted(runtime.settings.policies):
        for key in runtime.limiters[name].keys_for(identity):
            stored = runtime.store.get_state(key) is not None
            rows.append(replace(_row(runtime, key, stored), identity=identity))
    return rows


def reset_key(key: str, runtime: Runtime | None = None) -> str:
    """Empty one bucket (it is full again) and whatever this process remembers of it;
    returns its policy. Works on hashed identities, which only the key names."""
    runtime = runtime or get_runtime()
    found = split_key(key, runtime)
    if found is None:
        raise ConfigError(f"{key!r} is not a bucket key of this site's policies")
    policy, identity, _ = found
    for limiter in (runtime.limiters[policy], runtime.async_limiters[policy]):
        limiter.failure.fallback_store.reset(key)
        denials = getattr(limiter, "denials", None)  # the core's local denial memory
        if denials is not None:  # kept under the identity's plain key, composite or not
            denials.forget(limiter.key_for(identity))
    runtime.store.reset(key)
    return policy


def reset_identity(
    identity: str, policy: str | None = None, runtime: Runtime | None = None
) -> list[str]:
    """Reset ``identity``'s bucket in ``policy`` (default: every policy)."""
    runtime = runtime or get_runtime()
    names = [runtime.policy(policy).name] if policy else sorted(runtime.settings.policies)
    for name in names:
        for key in runtime.limiters[name].keys_for(identity):
            reset_key(key, runtime)
    return names
