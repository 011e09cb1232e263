"""Decisions requested together on one event loop share one round trip to the store.

Under concurrency the cost of a remote store is per call (client CPU to format a command
and parse its reply, one socket write and read), not per decision. So while one call is
in flight, new requests wait in a queue, and the next call carries all of them (up to
``max_batch``). A request that finds nothing in flight goes at once: a lone caller waits
for nobody. The store decides each request of a batch exactly as it would alone.

The batch is sent by a task of its own, never by a waiter, so cancelling a waiter
cannot cancel a call that carries other requests. A waiter cancelled while queued is
dropped before its batch is sent (nothing was charged); one cancelled while its batch is
in flight was decided and charged, as a lone cancelled request would be, and nobody else
is touched. A failed call fails each of its requests with the same ``StoreError``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from .base import StoreError

__all__ = ["Coalescer", "Results"]

Req = TypeVar("Req")
Res = TypeVar("Res")
# One outcome per request, in order: a result, or the error that request met (a batch
# split over cluster nodes can fail on one node and succeed on another).
Results = Sequence[Res | StoreError]


class Coalescer(Generic[Req, Res]):
    """Queues requests while ``send`` is busy and sends them as the next batch."""

    def __init__(
        self, send: Callable[[list[Req]], Awaitable[Results[Res]]], max_batch: int = 100
    ) -> None:
        self.send = send
        self.max_batch = max_batch
        self._queue: deque[tuple[Req, asyncio.Future[Res]]] = deque()
        self._busy = False
        self._drainer: asyncio.Task[None] | None = None  # a strong reference while it runs

    async def submit(self, request: Req) -> Res:
        if self._busy:
            future: asyncio.Future[Res] = asyncio.get_running_loop().create_future()
            self._queue.append((request, future))
            return await future
        self._busy = True
        try:
            outcome = (await self.send([request]))[0]
        finally:
            self._next()
        if isinstance(outcome, StoreError):
            raise outcome
        return outcome

    def _next(self) -> None:
        """After a call: hand what queued meanwhile to the drainer, or go idle."""
        if self._queue:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        else:
            self._busy = False

    def _batch(self) -> list[tuple[Req, asyncio.Future[Res]]]:
        """Up to ``max_batch`` queued requests whose waiters are still waiting."""
        batch: list[tuple[Req, asyncio.Future[Res]]] = []
        queue = self._queue
        while queue and len(batch) < self.max_batch:
            item = queue.popleft()
            if not item[1].done():  # a cancelled waiter is never sent, so never charged
                batch.append(item)
        return batch

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._batch()
                if batch:
                    await self._send_batch(batch)
        finally:
            self._busy = False
            self._drainer = None
            _fail(list(self._queue), StoreError("the event loop stopped the batch"))
            self._queue.clear()

    async def _send_batch(self, batch: list[tuple[Req, asyncio.Future[Res]]]) -> None:
        try:
            outcomes = await self.send([request for request, _ in batch])
        except StoreError as error:
            _fail(batch, error)
            return
        except BaseException:
            _fail(batch, StoreError("the batch was cancelled"))
            raise
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, StoreError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


def _fail(batch: list[tuple[Req, asyncio.Future[Res]]], error: StoreError) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
