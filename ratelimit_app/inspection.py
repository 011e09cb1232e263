"""Bucket state for people: shared by the admin page and ``manage.py ratelimit``.

Rows report tokens *now* (the store's ``peek`` applies the refill with the store's own
clock, so Redis rows use Redis time) and seconds until the bucket is full.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import islice

from .conf import Runtime, get_runtime
from .core.config import ConfigError
from .core.keys import parse_key

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

MAX_LISTED = 10_000  # keys gathered for one listing; a SCAN beyond that is cut short


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
            name, p.smallest.capacity, p.smallest.refill_rate, p.cost,
            p.smallest.capacity / p.smallest.refill_rate,
        )
        for name, p in sorted(runtime.settings.policies.items())
    ]  # fmt: skip


def split_key(key: str, runtime: Runtime) -> tuple[str, str, int] | None:
    """``(policy, identity as stored, bucket index)`` for one of this site's bucket keys."""
    counts = {name: len(p.configs) for name, p in runtime.settings.policies.items()}
    return parse_key(key, runtime.settings.key_prefix, counts)


def live_keys(runtime: Runtime | None = None) -> list[str]:
    """Stored bucket keys under our prefix, sorted (raises ``StoreError``)."""
    runtime = runtime or get_runtime()
    found = runtime.store.scan(runtime.settings.key_prefix + ":")
    keys = (key for key, _state in found if split_key(key, runtime))
    return sorted(islice(keys, MAX_LISTED))


def _row(runtime: Runtime, key: str, stored: bool = True) -> BucketRow:
    policy, identity, index = split_key(key, runtime) or ("?", key, 0)
    config = runtime.policy(policy).configs[index]
    decision = runtime.store.peek_all((key,), (config,))
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
    runtime.limiters[policy].forget(identity, stored=True)
    runtime.async_limiters[policy].forget(identity, stored=True)
    runtime.store.reset((key,))
    return policy


def reset_identity(
    identity: str, policy: str | None = None, runtime: Runtime | None = None
) -> list[str]:
    """Reset ``identity``'s bucket in ``policy`` (default: every policy)."""
    runtime = runtime or get_runtime()
    names = [runtime.policy(policy).name] if policy else sorted(runtime.settings.policies)
    for name in names:
        runtime.async_limiters[name].forget(identity)
        runtime.limiters[name].reset(identity)
    return names
