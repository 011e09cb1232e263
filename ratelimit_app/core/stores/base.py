"""What a store promises, and the one error every backend failure becomes."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..bucket import Decision
from ..config import RateLimitConfig

__all__ = ["AsyncStore", "StoreError", "SyncStore"]


class StoreError(Exception):
    """The backing store could not answer; the limiter's failure policy decides what next."""


@runtime_checkable
class SyncStore(Protocol):
    """Each call is atomic for its key: read, refill, consume and write in one step."""

    def take(self, key: str, config: RateLimitConfig, cost: float) -> Decision: ...

    def peek(self, key: str, config: RateLimitConfig) -> Decision: ...

    def reset(self, key: str) -> None: ...


@runtime_checkable
class AsyncStore(Protocol):
    async def take(self, key: str, config: RateLimitConfig, cost: float) -> Decision: ...

    async def peek(self, key: str, config: RateLimitConfig) -> Decision: ...

    async def reset(self, key: str) -> None: ...
