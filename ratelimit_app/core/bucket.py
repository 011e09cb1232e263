"""The token-bucket arithmetic (docs/semantics.md), as pure functions.

Nothing here reads a clock or touches a store. ``consume`` is the one place the
arithmetic lives (the memory store calls it directly, on plain floats, because it is the
hot path); ``stores/bucket.lua`` mirrors it line for line, and the model test in
``tests/core/test_model.py`` drives both through the same random traces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .config import MAX_TTL, RateLimitConfig

__all__ = [
    "BucketState",
    "Decision",
    "adjust",
    "adjust_all",
    "binding",
    "consume",
    "decide",
    "full_after",
    "refill",
    "take",
    "take_all",
]


class BucketState(NamedTuple):
    """What a store keeps per bucket."""

    tokens: float
    updated_at: float


# Not frozen: a frozen dataclass costs several times more to build, and one is built per
# request; the derived figures are properties for the same reason. Treat it as a value.
@dataclass(slots=True)
class Decision:
    """The outcome of one request against one bucket; truthy when allowed.

    ``remaining`` is the tokens left after the decision; ``retry_after`` (0 when allowed)
    and ``reset_after`` follow from it as docs/semantics.md defines them.
    """

    allowed: bool
    remaining: float
    cost: float
    config: RateLimitConfig
    #: Shadow mode let a denied request through: nothing was taken, so nothing to refund.
    shadowed: bool = False

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def limit(self) -> float:
        return self.config.capacity

    @property
    def refill_rate(self) -> float:
        return self.config.refill_rate

    @property
    def retry_after(self) -> float:
        """Seconds until this request could pass: ``(cost - tokens) / R``, 0 if allowed."""
        if self.allowed:
            return 0.0
        return (self.cost - self.remaining) / self.config.refill_rate

    @property
    def reset_after(self) -> float:
        """Seconds until the bucket is full: ``(C - tokens) / R``."""
        return (self.config.capacity - self.remaining) / self.config.refill_rate

    @property
    def next_after(self) -> float:
        """Seconds until another request of the same cost could pass."""
        return max(0.0, self.cost - self.remaining) / self.config.refill_rate


def consume(
    tokens: float, updated_at: float, now: float, capacity: float, rate: float, cost: float
) -> tuple[float, float, bool]:
    """The three steps of docs/semantics.md on plain floats -> (tokens, updated_at, allowed).

    1. greedy refill; a clock stepping back refills nothing and never drains;
    2. consume ``cost`` only if the refilled bucket holds it;
    3. ``updated_at`` never moves backwards, so no interval is credited twice.
    """
    if now > updated_at:
        tokens = min(capacity, tokens + (now - updated_at) * rate)
        updated_at = now
    elif tokens > capacity:  # only if the capacity was lowered since the last write
        tokens = capacity
    if tokens >= cost:
        return tokens - cost, updated_at, True
    return tokens, updated_at, False


def full_after(config: RateLimitConfig, tokens: float, at_least: int = 1) -> int:
    """Whole seconds until a bucket holding ``tokens`` is full again, ``ceil((C - t) / R)``
    (at least ``at_least``, at most ``MAX_TTL``): the time to live of its stored state. A
    full bucket and a missing one are the same, so keeping it longer is waste, and a
    client seen once costs its store seconds of memory, not the whole ``C / R``."""
    seconds = (config.capacity - tokens) / config.refill_rate
    if seconds <= at_least:
        return at_least
    return MAX_TTL if seconds >= MAX_TTL else math.ceil(seconds)


def refill(state: BucketState | None, config: RateLimitConfig, now: float) -> BucketState:
    """The state a bucket would have at ``now`` (a bucket never seen is full)."""
    if state is None:
        return BucketState(config.capacity, now)
    tokens, updated_at, _ = consume(
        state.tokens, state.updated_at, now, config.capacity, config.refill_rate, 0.0
    )
    return BucketState(tokens, updated_at)


def decide(config: RateLimitConfig, cost: float, allowed: bool, remaining: float) -> Decision:
    """The decision every store reports; kept as a function so stores never build it
    by hand."""
    return Decision(allowed, remaining, cost, config)


def binding(decisions: Sequence[Decision]) -> Decision:
    """The decision to report for a composite request: the bucket that holds it back.

    Denied: the denying bucket with the longest wait. Allowed: the bucket that will hold
    the next request back longest, then the emptiest.
    """
    denied = [d for d in decisions if not d.allowed]
    if denied:
        return max(denied, key=lambda d: d.retry_after)
    return max(decisions, key=lambda d: (d.next_after, -d.remaining))


def take(
    state: BucketState | None, config: RateLimitConfig, now: float, cost: float
) -> tuple[BucketState, Decision]:
    """``consume`` on a ``BucketState``; a bucket never seen starts full at ``now``."""
    tokens, updated_at = (config.capacity, now) if state is None else state
    tokens, updated_at, allowed = consume(
        tokens, updated_at, now, config.capacity, config.refill_rate, cost
    )
    return BucketState(tokens, updated_at), decide(config, cost, allowed, tokens)


def take_all(
    states: Sequence[BucketState | None],
    configs: Sequence[RateLimitConfig],
    now: float,
    cost: float,
) -> tuple[list[BucketState], Decision]:
    """``take`` over several buckets at once (a composite policy): every bucket is
    refilled, and all of them consume ``cost`` only if each one holds it."""
    refilled = [refill(state, config, now) for state, config in zip(states, configs, strict=True)]
    allowed = all(state.tokens >= cost for state in refilled)
    if allowed:
        refilled = [BucketState(state.tokens - cost, state.updated_at) for state in refilled]
    decisions = [
        decide(config, cost, allowed, state.tokens)
        for state, config in zip(refilled, configs, strict=True)
    ]
    return refilled, binding(decisions)


def adjust(
    state: BucketState | None, config: RateLimitConfig, now: float, add: float, empty: bool
) -> BucketState:
    """An operator's change to a bucket, outside the request arithmetic: refill to
    ``now``, then add ``add`` tokens (a grant or a refund; clamped to [0, capacity]) or,
    with ``empty``, drain it to 0 so it admits nothing until it refills.
    ``stores/adjust.lua`` mirrors it line for line."""
    refilled = refill(state, config, now)
    tokens = 0.0 if empty else max(0.0, min(config.capacity, refilled.tokens + add))
    return BucketState(tokens, refilled.updated_at)


def adjust_all(
    states: Sequence[BucketState | None],
    configs: Sequence[RateLimitConfig],
    now: float,
    add: float,
    empty: bool,
) -> list[BucketState]:
    """``adjust`` on every bucket of a composite policy, as one change."""
    return [
        adjust(state, config, now, add, empty)
        for state, config in zip(states, configs, strict=True)
    ]
