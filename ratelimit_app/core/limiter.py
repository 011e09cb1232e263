"""The limiters users call: key building, cost checks and the failure policy around a store.

The sync and async classes share ``_LimiterBase``; each method differs from its twin
only in the awaited store call.
"""

from __future__ import annotations

import logging
import time

from .bucket import Decision
from .config import RateLimitConfig, check_policy_name
from .failure import StoreFailureHandler
from .keys import build_key, check_prefix, log_identity
from .shedding import DenialCache
from .stores.base import AsyncStore, StoreError, SyncStore
from .stores.memory import AsyncMemoryStore, MemoryStore

__all__ = ["AsyncTokenBucketRateLimiter", "TokenBucketRateLimiter"]

logger = logging.getLogger("ratelimit_app")


class _LimiterBase:
    store: SyncStore | AsyncStore

    def __init__(
        self,
        config: RateLimitConfig,
        store: SyncStore | AsyncStore,
        *,
        name: str = "default",
        key_prefix: str = "rl",
        on_store_error: str | StoreFailureHandler = "fallback",
        shed_denials: bool | None = None,
    ) -> None:
        if not isinstance(config, RateLimitConfig):
            raise TypeError(f"config must be a RateLimitConfig, got {type(config).__name__}")
        self.config = config
        self.store = store
        self.name = check_policy_name(name)
        self.key_prefix = check_prefix(key_prefix)
        self.failure = (
            on_store_error
            if isinstance(on_store_error, StoreFailureHandler)
            else StoreFailureHandler(on_store_error)
        )
        if shed_denials is None:  # local stores answer as fast as the cache would
            shed_denials = not isinstance(store, (MemoryStore, AsyncMemoryStore))
        self.denials = (
            DenialCache(clock=getattr(store, "clock", None) or time.monotonic)
            if shed_denials
            else None
        )

    def key_for(self, identity: str) -> str:
        return build_key(self.key_prefix, self.name, identity)

    def _prepare(self, identity: str, cost: float) -> tuple[str, float, Decision | None, float]:
        """Validate and build the key; answer at once when a known denial proves the
        outcome or the store is backing off. Also returns the time the request leaves."""
        cost = self.config.check_cost(cost)
        key = self.key_for(identity)
        denials = self.denials
        if denials is None:
            sent_at = 0.0
        else:
            sent_at = denials.clock()
            shed = denials.check(key, self.config, cost, sent_at)
            if shed is not None:
                return key, cost, shed, sent_at
        if self.failure.should_skip_store():
            return key, cost, self.failure.decide(key, self.config, cost), sent_at
        return key, cost, None, sent_at

    def _stored(self, key: str, decision: Decision, sent_at: float) -> Decision:
        """Bookkeeping after the store answered."""
        self.failure.succeeded()
        if self.denials is not None:
            self.denials.learn(key, decision, sent_at)
        return decision

    def _finish(self, identity: str, decision: Decision) -> Decision:
        if not decision.allowed:
            logger.info(
                "rate limited: policy=%s identity=%s cost=%g retry_after=%.3f",
                self.name, log_identity(identity), decision.cost, decision.retry_after,
            )  # fmt: skip
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "allowed: policy=%s identity=%s cost=%g remaining=%.3f",
                self.name, identity, decision.cost, decision.remaining,
            )  # fmt: skip
        return decision

    def _forget(self, identity: str) -> str:
        """Drop what this process remembers of a bucket before the store resets it."""
        key = self.key_for(identity)
        self.failure.fallback_store.reset(key)
        if self.denials is not None:
            self.denials.forget(key)
        return key

    def _on_error(self, error: StoreError, key: str, cost: float | None) -> Decision:
        self.failure.failed(error)
        if self.failure.mode == "raise":
            raise error
        if cost is None:
            return self.failure.peek(key, self.config)
        return self.failure.decide(key, self.config, cost)


class TokenBucketRateLimiter(_LimiterBase):
    """``allow_request(identity, cost)`` against a ``SyncStore``."""

    store: SyncStore

    def allow_request(self, identity: str, cost: float = 1) -> Decision:
        key, cost, decision, sent_at = self._prepare(identity, cost)
        if decision is None:
            try:
                decision = self._stored(key, self.store.take(key, self.config, cost), sent_at)
            except StoreError as error:
                decision = self._on_error(error, key, cost)
        return self._finish(identity, decision)

    def peek(self, identity: str) -> Decision:
        key = self.key_for(identity)
        if self.failure.should_skip_store():
            return self.failure.peek(key, self.config)
        try:
            return self.store.peek(key, self.config)
        except StoreError as error:
            return self._on_error(error, key, None)

    def reset(self, identity: str) -> None:
        key = self._forget(identity)
        self.store.reset(key)


class AsyncTokenBucketRateLimiter(_LimiterBase):
    """The async twin over an ``AsyncStore``."""

    store: AsyncStore

    async def allow_request(self, identity: str, cost: float = 1) -> Decision:
        key, cost, decision, sent_at = self._prepare(identity, cost)
        if decision is None:
            try:
                taken = await self.store.take(key, self.config, cost)
                decision = self._stored(key, taken, sent_at)
            except StoreError as error:
                decision = self._on_error(error, key, cost)
        return self._finish(identity, decision)

    async def peek(self, identity: str) -> Decision:
        key = self.key_for(identity)
        if self.failure.should_skip_store():
            return self.failure.peek(key, self.config)
        try:
            return await self.store.peek(key, self.config)
        except StoreError as error:
            return self._on_error(error, key, None)

    async def reset(self, identity: str) -> None:
        key = self._forget(identity)
        await self.store.reset(key)
