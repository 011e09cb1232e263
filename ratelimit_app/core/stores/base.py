"""What a store promises, and the one error every backend failure becomes.

A store is always asked about a tuple of keys, one per bucket of the policy (usually
one), with the matching tuple of configs: a request consumes from every bucket or from
none, in one atomic step, and the reported ``Decision`` is the bucket that holds the
request back (``bucket.binding``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ..bucket import Decision
from ..config import RateLimitConfig

__all__ = [
    "AdjustableStore",
    "AsyncAdjustableStore",
    "AsyncStore",
    "Configs",
    "Keys",
    "StoreError",
    "SyncStore",
    "failure_scope",
]

Keys = Sequence[str]
Configs = Sequence[RateLimitConfig]


class StoreError(Exception):
    """The backing store could not answer; the limiter's failure policy decides what next."""


@runtime_checkable
class SyncStore(Protocol):
    def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        """Refill, then consume ``cost`` from every bucket if each holds it, atomically."""
        ...

    def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        """The buckets as they are now; nothing is consumed or written."""
        ...

    def reset(self, keys: Keys) -> None:
        """Forget the buckets: they are full again."""
        ...


@runtime_checkable
class AsyncStore(Protocol):
    async def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision: ...

    async def peek_all(self, keys: Keys, configs: Configs) -> Decision: ...

    async def reset(self, keys: Keys) -> None: ...


def failure_scope(store: Any, keys: Keys) -> str | None:
    """The part of ``store`` that ``keys`` live in, when it can tell (``failure_scope``
    on a Redis Cluster store: the owning master); None for the whole store. Wrappers
    ask the store they wrap with this."""
    scope_of = getattr(store, "failure_scope", None)
    return None if scope_of is None else scope_of(keys)


@runtime_checkable
class AdjustableStore(SyncStore, Protocol):
    """A store an operator can act on: every built-in store is one; a limiter needs only
    ``SyncStore``, so a custom store may leave ``adjust`` out."""

    def adjust(
        self, keys: Keys, configs: Configs, add: float = 0.0, *, empty: bool = False
    ) -> list[float]:
        """Refill, then add ``add`` tokens (clamped to [0, capacity]) or, with ``empty``,
        drain the buckets to 0, all at once; returns each bucket's tokens after."""
        ...


@runtime_checkable
class AsyncAdjustableStore(AsyncStore, Protocol):
    async def adjust(
        self, keys: Keys, configs: Configs, add: float = 0.0, *, empty: bool = False
    ) -> list[float]: ...
