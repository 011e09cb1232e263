"""Bucket state for people who act on it: shared by the admin page and ``manage.py ratelimit``.

A bucket absent from the store is full, so a listing shows the live buckets only, each
with its tokens *now* (the core refill applied at the store's own clock, read once per
listing), when it was last written, and whether its identity is refused right now.
Values under the key prefix that are not buckets (another program sharing the prefix,
a planted string) are skipped by the stores' ``scan``, never shown and never fatal.

Actions (reset, grant, drain) change every bucket of the identity's policy in one atomic
store call and clear this process's memory of it; other processes' denial memory
expires within ``DenialCache.max_age``, so every worker sees the change.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from django.core.paginator import Page, Paginator

from .conf import Runtime, get_runtime
from .core.bucket import BucketState, refill
from .core.config import ConfigError, check_number
from .core.keys import format_keys, hash_identity, parse_key, safe_identity

__all__ = [
    "ACTIONS",
    "MAX_LISTED",
    "SORTS",
    "BucketRow",
    "Listing",
    "PolicyRow",
    "act",
    "bucket_names",
    "digest_of",
    "duration",
    "grant_amount",
    "identity_buckets",
    "identity_key",
    "is_digest",
    "listing",
    "live_buckets",
    "policy_rows",
    "rows_for",
]

MAX_LISTED = 10_000  # buckets gathered for one listing; a SCAN beyond that is cut short
ACTIONS = ("reset", "grant", "drain")
_DIGEST = re.compile(r"#?([0-9a-f]{12,40})")


@dataclass(frozen=True)
class PolicyRow:
    name: str
    capacity: float
    refill_rate: float
    cost: float
    seconds_to_full: float
    mode: str


@dataclass(frozen=True)
class BucketRow:
    """One bucket as people read it; ``age`` is seconds since the store last wrote it
    (None: not stored, so full)."""

    key: str
    policy: str
    identity: str  # as stored: the identity, or '#' + digest for one that was hashed
    bucket: int  # which bucket of a composite policy (0 for a single-bucket one)
    buckets: int
    tokens: float
    capacity: float
    refill_rate: float
    cost: float
    age: float | None
    read_at: float  # wall-clock time of the reading
    tier: str = ""  # the tier of a tiered policy ("" for an untiered one)

    @property
    def stored(self) -> bool:
        return self.age is not None

    @property
    def seconds_to_full(self) -> float:
        return (self.capacity - self.tokens) / self.refill_rate

    @property
    def full_in(self) -> str:
        """Time to full, in the largest units that matter."""
        return duration(self.seconds_to_full) if self.seconds_to_full > 0 else "full"

    @property
    def fill(self) -> int:
        """Percent full, for the bar."""
        return max(0, min(100, round(100 * self.tokens / self.capacity)))

    @property
    def refused(self) -> bool:
        """A request of the policy's cost would be refused now."""
        return self.tokens < self.cost

    @property
    def digest(self) -> str:
        """The digest the denial log prints for this identity."""
        return digest_of(self.identity)

    @property
    def last_seen(self) -> datetime | None:
        if self.age is None:
            return None
        return datetime.fromtimestamp(self.read_at - self.age, tz=UTC)


@dataclass(frozen=True)
class Listing:
    rows: list[BucketRow]
    page: Page[Any] | None
    live: int  # live buckets under the prefix (capped at MAX_LISTED)
    matched: int
    capped: bool


SORTS = {
    "tokens": lambda row: (row.tokens, row.key),
    "-tokens": lambda row: (-row.tokens, row.key),
    "last_seen": lambda row: (row.age if row.age is not None else math.inf, row.key),
    "key": lambda row: row.key,
}


def duration(seconds: float) -> str:
    """``42.5 s``, ``33 min 20 s``, ``5 h 12 min``, ``11 d 13 h``: readable at a glance."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    for unit, size, small, small_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60)):
        if whole >= size:
            return f"{whole // size} {unit} {whole % size // small_size} {small}"
    return f"{whole // 60} min {whole % 60} s"


def is_digest(query: str) -> bool:
    """A search for the digest a denial log printed (12 hex digits, or a key's 40)."""
    return _DIGEST.fullmatch(query) is not None


def digest_of(stored_identity: str) -> str:
    """The log digest of an identity as a key stores it: a hashed one carries its own."""
    if stored_identity.startswith("#"):
        return stored_identity[1:13]
    return hash_identity(stored_identity)[1:13]


def policy_rows(runtime: Runtime | None = None) -> list[PolicyRow]:
    runtime = runtime or get_runtime()
    settings = runtime.settings
    return [
        PolicyRow(
            name, p.smallest.capacity, p.smallest.refill_rate, p.cost,
            p.smallest.capacity / p.smallest.refill_rate,
            "shadow" if settings.shadow(name) else "enforce",
        )
        for name, p in sorted(settings.policies.items())
    ]  # fmt: skip


def bucket_names(runtime: Runtime) -> dict[str, Any]:
    """Each policy's bucket-set name (``<policy>``, or ``<policy>:<tier>`` per tier of a
    tiered one) -> its buckets' configs."""
    found: dict[str, Any] = {}
    for name, policy in runtime.settings.policies.items():
        if policy.tier is None:
            found[name] = policy.configs
        else:
            found.update({f"{name}:{tier}": c for tier, c in policy.tiers.items()})
    return found


def split_key(key: str, runtime: Runtime) -> tuple[str, str, int] | None:
    """``(bucket-set name, identity as stored, bucket index)`` for one of this site's keys."""
    counts = {name: len(configs) for name, configs in bucket_names(runtime).items()}
    return parse_key(key, runtime.settings.key_prefix, counts)


def live_buckets(runtime: Runtime | None = None) -> list[tuple[str, BucketState]]:
    """Stored buckets of this site's policies, sorted by key (raises ``StoreError``)."""
    runtime = runtime or get_runtime()
    found = runtime.store.scan(runtime.settings.key_prefix + ":")
    ours = ((key, state) for key, state in found if split_key(key, runtime))
    return sorted(islice(ours, MAX_LISTED))


def _row(runtime: Runtime, key: str, state: BucketState | None, now: float) -> BucketRow:
    name, identity, index = split_key(key, runtime) or ("?", key, 0)
    policy_name, _, tier = name.partition(":")
    policy = runtime.policy(policy_name)
    configs = policy.tiers[tier] if tier else policy.configs
    config = configs[index]
    tokens = refill(state, config, now).tokens
    age = None if state is None else max(0.0, now - state.updated_at)
    return BucketRow(
        key, policy_name, identity, index, len(configs), tokens, config.capacity,
        config.refill_rate, min(policy.cost, config.capacity), age, time.time(), tier,
    )  # fmt: skip


def rows_for(
    runtime: Runtime, buckets: Sequence[tuple[str, BucketState | None]]
) -> list[BucketRow]:
    now = runtime.store.now()
    return [_row(runtime, key, state, now) for key, state in buckets]


def _matches(runtime: Runtime, key: str, query: str, policy: str | None) -> bool:
    found = split_key(key, runtime)
    if found is None or (policy and found[0].partition(":")[0] != policy):
        return False
    digest = _DIGEST.fullmatch(query)
    stored = found[1]
    if stored in (query, safe_identity(query)):
        return True
    return digest is not None and digest_of(stored) == digest[1][:12]


def listing(
    query: str = "",
    policy: str | None = None,
    sort: str = "tokens",
    page: Any = 1,
    per_page: int = 50,
    runtime: Runtime | None = None,
) -> Listing:
    """The live buckets matching a policy and an identity or log digest, sorted and cut
    to one page. ``sort`` must be a key of ``SORTS``; ``page`` may be anything a person
    typed (Django's paginator falls back to the first or last page)."""
    runtime = runtime or get_runtime()
    live = live_buckets(runtime)
    wanted = query or policy
    chosen = [(k, s) for k, s in live if not wanted or _matches(runtime, k, query, policy)]
    rows = sorted(rows_for(runtime, chosen), key=SORTS[sort])
    shown = Paginator(rows, per_page).get_page(page)
    return Listing(list(shown.object_list), shown, len(live), len(rows), len(live) >= MAX_LISTED)


def identity_buckets(identity: str, runtime: Runtime | None = None) -> list[BucketRow]:
    """One row per bucket of every policy for ``identity`` (e.g. ``ip:10.0.0.1``), full
    ones included."""
    runtime = runtime or get_runtime()
    now, rows = runtime.store.now(), []
    for name in sorted(bucket_names(runtime)):
        for key in runtime.limiters[name].keys_for(identity):
            try:
                state = runtime.store.get_state(key)
            except ValueError:  # another program's value under our key: not a bucket
                continue
            rows.append(replace(_row(runtime, key, state, now), identity=identity))
    return rows


def _identity_keys(runtime: Runtime, key: str) -> tuple[str, str, tuple[str, ...]]:
    found = split_key(key, runtime)
    if found is None:
        raise ConfigError(f"{key!r} is not a bucket key of this site's policies")
    name, identity, _ = found
    count = len(bucket_names(runtime)[name])
    return name, identity, format_keys(runtime.settings.key_prefix, name, identity, count)


def grant_amount(raw: Any) -> float:
    """Tokens to grant as typed by a person: a finite number > 0 (capped at capacity
    by the store anyway)."""
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"tokens to grant must be a number, got {raw!r}") from None
    return check_number(number, "tokens to grant")


def act(action: str, key: str, amount: Any = None, runtime: Runtime | None = None) -> str:
    """Reset, grant ``amount`` tokens to, or drain the identity whose bucket is ``key``
    (every bucket of its policy, in one atomic call); returns what was done."""
    runtime = runtime or get_runtime()
    if action not in ACTIONS:
        raise ConfigError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    policy, identity, keys = _identity_keys(runtime, key)
    configs = bucket_names(runtime)[policy]
    add = grant_amount(amount) if action == "grant" else 0.0
    runtime.limiters[policy].forget(identity, stored=True)
    runtime.async_limiters[policy].forget(identity, stored=True)
    if action == "reset":
        runtime.store.reset(keys)
        return f"Reset {identity} in policy {policy}: it is full again."
    tokens = runtime.store.adjust(keys, configs, add, empty=action == "drain")
    now = ", ".join(f"{t:g}" for t in tokens)
    if action == "drain":
        return f"Drained {identity} in policy {policy}: 0 tokens, refused until it refills."
    return f"Granted {add:g} token(s) to {identity} in policy {policy}: now {now}."


def identity_key(identity: str, policy: str, runtime: Runtime | None = None) -> str:
    """The first bucket key of ``identity`` in ``policy`` (or a tier of it,
    ``<policy>:<tier>``): what ``act`` takes."""
    runtime = runtime or get_runtime()
    limiter = runtime.limiters.get(policy) or runtime.limiter(policy)
    return limiter.keys_for(identity)[0]
