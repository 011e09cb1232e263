"""A sync store behind ``await``, its calls made inline.

Right where a call never blocks for long (process memory: a lock held for microseconds,
never across an await), or where the event loop serves nothing else (the loop asgiref
starts for one sync caller): there a worker thread or a new connection would only add
cost.
"""

from __future__ import annotations

from typing import Any

from ..bucket import BucketState, Decision
from .base import Configs, Keys

__all__ = ["InlineStore"]


class InlineStore:
    """The async face of ``sync``: each method awaits nothing but the sync call."""

    def __init__(self, sync: Any) -> None:
        self.sync = sync

    async def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        return self.sync.take_all(keys, configs, cost)  # type: ignore[no-any-return]

    async def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        return self.sync.peek_all(keys, configs)  # type: ignore[no-any-return]

    async def reset(self, keys: Keys) -> None:
        self.sync.reset(keys)

    async def adjust(
        self, keys: Keys, configs: Configs, add: float = 0.0, *, empty: bool = False
    ) -> list[float]:
        return self.sync.adjust(keys, configs, add, empty=empty)  # type: ignore[no-any-return]

    async def get_state(self, key: str) -> BucketState | None:
        return self.sync.get_state(key)  # type: ignore[no-any-return]
