"""The limiters users call: key building, cost checks and the failure policy around a store.

The sync and async classes share ``_LimiterBase``; each method differs from its twin
only in the awaited store call.
"""

from __future__ import annotations

import logging

from .bucket import Decision
from .config import RateLimitConfig, check_policy_name
from .failure import StoreFailureHandler
from .keys import build_key, check_prefix, log_identity
from .stores.base import AsyncStore, StoreError, SyncStore

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

    def key_for(self, identity: str) -> str:
        return build_key(self.key_prefix, self.name, identity)

    def _prepare(self, identity: str, cost: float) -> tuple[str, float, Decision | None]:
        """Validate, build the key, and answer at once while the store is backing off."""
        cost = self.config.check_cost(cost)
        key = self.key_for(identity)
        if self.failure.should_skip_store():
            return key, cost, self.failure.decide(key, self.config, cost)
        return key, cost, None

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
        key, cost, decision = self._prepare(identity, cost)
        if decision is None:
            try:
                decision = self.store.take(key, self.config, cost)
            except StoreError as error:
                decision = self._on_error(error, key, cost)
            else:
                self.failure.succeeded()
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
        key = self.key_for(identity)
        self.failure.fallback_store.reset(key)
        self.store.reset(key)


class AsyncTokenBucketRateLimiter(_LimiterBase):
    """The async twin over an ``AsyncStore``."""

    store: AsyncStore

    async def allow_request(self, identity: str, cost: float = 1) -> Decision:
        key, cost, decision = self._prepare(identity, cost)
        if decision is None:
            try:
                decision = await self.store.take(key, self.config, cost)
            except StoreError as error:
                decision = self._on_error(error, key, cost)
            else:
                self.failure.succeeded()
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
        key = self.key_for(identity)
        self.failure.fallback_store.reset(key)
        await self.store.reset(key)
