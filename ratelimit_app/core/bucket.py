"""The token-bucket arithmetic of DESIGN.md, as pure functions.

Nothing here reads a clock or touches a store; the Lua script in ``stores/bucket.lua``
mirrors these lines one for one, and ``tests/core/test_bucket.py`` runs one table
against both.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import RateLimitConfig

__all__ = ["BucketState", "Decision", "decide", "refill", "take"]


@dataclass(frozen=True, slots=True)
class BucketState:
    tokens: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one request against one bucket; truthy when allowed."""

    allowed: bool
    limit: float
    remaining: float
    retry_after: float
    reset_after: float
    cost: float = 1.0
    refill_rate: float = 1.0

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def next_after(self) -> float:
        """Seconds until another request of the same cost could pass."""
        if not self.allowed:
            return self.retry_after
        return max(0.0, self.cost - self.remaining) / self.refill_rate


def refill(state: BucketState | None, config: RateLimitConfig, now: float) -> BucketState:
    """Step 1 and 3 of the semantics: greedy refill, and never move time backwards."""
    if state is None:
        return BucketState(config.capacity, now)
    elapsed = max(0.0, now - state.updated_at)
    tokens = min(config.capacity, state.tokens + elapsed * config.refill_rate)
    return BucketState(tokens, max(state.updated_at, now))


def decide(config: RateLimitConfig, cost: float, allowed: bool, remaining: float) -> Decision:
    """Build the reported figures from the tokens left; shared by every store."""
    rate = config.refill_rate
    return Decision(
        allowed=allowed,
        limit=config.capacity,
        remaining=remaining,
        retry_after=0.0 if allowed else (cost - remaining) / rate,
        reset_after=(config.capacity - remaining) / rate,
        cost=cost,
        refill_rate=rate,
    )


def take(
    state: BucketState | None, config: RateLimitConfig, now: float, cost: float
) -> tuple[BucketState, Decision]:
    """Step 2: consume ``cost`` if the refilled bucket holds it, else consume nothing."""
    current = refill(state, config, now)
    allowed = current.tokens >= cost
    if allowed:
        current = BucketState(current.tokens - cost, current.updated_at)
    return current, decide(config, cost, allowed, current.tokens)
