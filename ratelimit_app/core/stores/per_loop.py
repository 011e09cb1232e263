"""An async store per event loop, closed when its loop shuts down.

An asyncio Redis client belongs to the loop it first ran in. A Django process may run
several loops over its life (one per ``async_to_sync`` call in a sync server, one per
``asyncio.run``), so the store behind its async views is built per loop, on first use.
Each one is closed inside its own loop when that loop shuts down: a small async
generator is left suspended in the loop, and ``shutdown_asyncgens`` (which
``asyncio.run``, asgiref and uvicorn all call before closing a loop) finalises it, which
closes the store's connections while the loop can still run them.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from ..bucket import Decision
from .base import AsyncStore, Configs, Keys, failure_scope

__all__ = ["PerLoopStore"]

Opener = Callable[[], AsyncStore]
Closer = Callable[[AsyncStore], Awaitable[None]]


class PerLoopStore:
    """An ``AsyncStore`` that delegates to one store per running event loop."""

    def __init__(self, open_store: Opener, close_store: Closer) -> None:
        self.open_store = open_store
        self.close_store = close_store
        self._lock = threading.Lock()
        self._per_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[AsyncStore, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()

    def __len__(self) -> int:
        """How many loops hold a store now (loops that were collected are gone)."""
        return len(self._per_loop)

    async def current(self) -> AsyncStore:
        """This loop's store, opened on first use."""
        loop = asyncio.get_running_loop()
        found = self._per_loop.get(loop)
        if found is not None:
            return found[0]
        with self._lock:
            store = self.open_store()
            closer = self._close_at_shutdown(store)
            self._per_loop[loop] = (store, closer)
        await anext(closer)  # now suspended in this loop, which will finalise it
        return store

    async def _close_at_shutdown(self, store: AsyncStore) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self.close_store(store)

    def in_this_loop(self) -> AsyncStore | None:
        """This loop's store if it has one (for sync helpers called inside the loop)."""
        try:
            found = self._per_loop.get(asyncio.get_running_loop())
        except RuntimeError:
            return None
        return None if found is None else found[0]

    async def aclose(self) -> None:
        """Close this loop's store now (for code that manages its loop by hand)."""
        found = self._per_loop.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found[1].aclose()  # runs the closer's finally: the store closes once

    def failure_scope(self, keys: Keys) -> str | None:
        """This loop's store's answer (a cluster node), if it has one."""
        return failure_scope(self.in_this_loop(), keys)

    async def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        return await (await self.current()).take_all(keys, configs, cost)

    async def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        return await (await self.current()).peek_all(keys, configs)

    async def reset(self, keys: Keys) -> None:
        await (await self.current()).reset(keys)

    async def adjust(
        self, keys: Keys, configs: Configs, add: float = 0.0, *, empty: bool = False
    ) -> list[float]:
        store: Any = await self.current()
        return await store.adjust(keys, configs, add, empty=empty)  # type: ignore[no-any-return]

    async def get_state(self, key: str) -> Any:
        store: Any = await self.current()
        return await store.get_state(key)
