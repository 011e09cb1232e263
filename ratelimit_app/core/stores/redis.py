"""Buckets in Redis: one EVALSHA round trip per decision, or per batch of them (async).

Everything but the network call is shared between ``RedisStore`` and
``AsyncRedisStore``, in ``redis_wire.py``: the script, argument building, reply parsing
and the translation of redis-py's exceptions into ``StoreError``. Works with ``redis.Redis``,
``redis.cluster.RedisCluster`` and their ``redis.asyncio`` twins: a call's keys share a
slot (one request's keys share a hash tag; a coalesced batch is split by slot), so a
cluster routes it by its first key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from functools import partial
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from ..bucket import BucketState, Decision
from ..config import check_count
from .base import Configs, Keys, StoreError
from .coalesce import Coalescer, Results
from .connections import ConnectionCache
from .redis_wire import (
    ADJUST_SCRIPT,
    BUCKET_SCRIPT,
    BUCKET_SHA,
    Clock,
    RedisBase,
    Request,
    bucket_states,
    decision_at,
    glob_literal,
    pack,
    parse_state,
    translated,
)

__all__ = [
    "ADJUST_SCRIPT",
    "BUCKET_SCRIPT",
    "BUCKET_SHA",
    "DEFAULT_MAX_BATCH",
    "AsyncRedisStore",
    "RedisStore",
    "Request",
    "parse_state",
    "translated",
]

_BATCH = 500  # keys per SCAN step and per MGET
# Decisions per coalesced call: enough to amortise a round trip many times over, few
# enough that one call stays short inside Redis (about 2 us of script time per decision).
DEFAULT_MAX_BATCH = 100


class RedisStore(RedisBase):
    """``client`` is a ``redis.Redis`` or ``redis.cluster.RedisCluster``."""

    def __init__(self, client: Any, clock: Clock | None = None) -> None:
        super().__init__(client, clock)
        pool = self._pool
        self._connections = None if pool is None else ConnectionCache(pool)

    def _run(self, command: tuple[Any, ...]) -> Any:
        with translated():
            try:
                return self._call(command)
            except NoScriptError:
                return self._call(self._eval(command))

    def _call(self, command: tuple[Any, ...]) -> Any:
        connections = self._connections
        if connections is None:
            return self.client.execute_command(*command)
        return connections.run(partial(_exchange_sync, command=command))

    def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        request = self._request(keys, configs, cost)
        reply = self._run(self._command((request,)))
        return decision_at(reply.split(), 0, configs, cost)

    def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        reply = self._run(self._command((self._request(keys, configs, 0.0),), "0"))
        return decision_at(reply.split(), 0, configs, 0.0)

    def reset(self, keys: Keys) -> None:
        with translated():
            self.client.delete(*keys)

    def adjust(
        self, keys: Keys, configs: Configs, add: float = 0.0, *, empty: bool = False
    ) -> list[float]:
        """Add tokens to (or empty) the buckets in one atomic round trip; their tokens."""
        return [float(raw) for raw in self._run(self._adjust_command(keys, configs, add, empty))]

    def now(self) -> float:
        """The time bucket states are written in (the server's TIME unless a clock is set)."""
        if self.clock is not None:
            return self.clock()
        with translated():
            seconds, micros = self.client.time()
        return float(seconds) + float(micros) / 1_000_000

    def get_state(self, key: str) -> BucketState | None:
        with translated():
            raw = self.client.get(key)
        return None if raw is None else parse_state(raw)

    def scan(self, prefix: str = "") -> Iterator[tuple[str, BucketState]]:
        """Stored buckets under ``prefix``, in batches (SCAN: never blocks the server)."""
        batch: list[Any] = []
        match = glob_literal(prefix) + "*"
        with translated():
            for key in self.client.scan_iter(match=match, count=_BATCH):
                batch.append(key)
                if len(batch) >= _BATCH:
                    yield from bucket_states(batch, self._mget()(batch))
                    batch = []
            if batch:
                yield from bucket_states(batch, self._mget()(batch))


class AsyncRedisStore(RedisBase):
    """``client`` is a ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``.

    With ``coalesce`` (the default), decisions requested while a call is in flight wait
    and go together in the next call, up to ``max_batch`` per call (``coalesce.py``); on
    a cluster the batch is split by hash slot, one call per slot, sent concurrently.
    """

    _initialized = False

    def __init__(
        self,
        client: Any,
        clock: Clock | None = None,
        *,
        coalesce: bool = True,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        super().__init__(client, clock)
        self.coalesce = coalesce
        self._coalescer = Coalescer(self._send, check_count(max_batch, "max_batch"))
        self._own: Any = None  # the coalescer's connection: its calls never overlap

    async def _run(self, command: tuple[Any, ...], own: bool = False) -> Any:
        """``own``: called by the coalescer, one call at a time, on a connection of its
        own (no pool checkout per call)."""
        with translated():
            if not self._initialized:
                await self._initialize()
            try:
                return await self._call(command, own)
            except NoScriptError:
                return await self._call(self._eval(command), own)

    async def _call(self, command: tuple[Any, ...], own: bool) -> Any:
        pool = self._pool
        if pool is None:
            return await self.client.execute_command(*command)
        if own:
            if self._own is None:
                self._own = await pool.get_connection()  # held; the pool closes it
            return await _exchange(self._own, command)
        connection = await pool.get_connection()
        try:
            return await _exchange(connection, command)
        finally:
            await pool.release(connection)

    async def _initialize(self) -> None:
        """A fresh async cluster client sends commands to random nodes until it has read
        the slot map; a first burst then meets MOVED, redis-py drops connections
        mid-flight and re-sends scripts that already ran. Read the map first (a no-op on
        ``redis.asyncio.Redis``)."""
        initialize = getattr(self.client, "initialize", None)
        if initialize is not None:
            await initialize()
        self._initialized = True

    async def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        request = self._request(keys, configs, cost)
        if self.coalesce:
            return await self._coalescer.submit(request)
        reply = await self._run(self._command((request,)))
        return decision_at(reply.split(), 0, configs, cost)

    async def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        reply = await self._run(self._command((self._request(keys, configs, 0.0),), "0"))
        return decision_at(reply.split(), 0, configs, 0.0)

    async def _send(self, requests: list[Request]) -> Results[Decision]:
        """One call for the batch; on a cluster, one per hash slot, sent concurrently
        (a slot that fails fails only its own requests)."""
        keyslot = self._keyslot
        if keyslot is None or len(requests) == 1:
            return self._decisions(await self._run(self._command(requests), True), requests)
        slots: dict[int, list[int]] = {}
        for index, request in enumerate(requests):
            slots.setdefault(keyslot(request.keys[0]), []).append(index)
        groups = [[requests[i] for i in indexes] for indexes in slots.values()]
        replies = await asyncio.gather(
            *(self._run(self._command(group)) for group in groups), return_exceptions=True
        )
        outcomes: list[Decision | StoreError] = [StoreError("not sent")] * len(requests)
        for indexes, group, reply in zip(slots.values(), groups, replies, strict=True):
            if isinstance(reply, BaseException):
                if not isinstance(reply, StoreError):
                    raise reply
                decided: Sequence[Decision | StoreError] = [reply] * len(group)
            else:
                decided = self._decisions(reply, group)
            for index, outcome in zip(indexes, decided, strict=True):
                outcomes[index] = outcome
        return outcomes

    async def reset(self, keys: Keys) -> None:
        with translated():
            await self.client.delete(*keys)

    async def adjust(
        self, keys: Keys, configs: Configs, add: float = 0.0, *, empty: bool = False
    ) -> list[float]:
        reply = await self._run(self._adjust_command(keys, configs, add, empty))
        return [float(raw) for raw in reply]

    async def get_state(self, key: str) -> BucketState | None:
        with translated():
            raw = await self.client.get(key)
        return None if raw is None else parse_state(raw)

    async def scan(self, prefix: str = "") -> AsyncIterator[tuple[str, BucketState]]:
        """The async twin of ``RedisStore.scan``, streaming the same batches."""
        batch: list[Any] = []
        match = glob_literal(prefix) + "*"
        with translated():
            async for key in self.client.scan_iter(match=match, count=_BATCH):
                batch.append(key)
                if len(batch) >= _BATCH:
                    for item in bucket_states(batch, await self._mget()(batch)):
                        yield item
                    batch = []
            if batch:
                for item in bucket_states(batch, await self._mget()(batch)):
                    yield item


def _exchange_sync(connection: Any, command: tuple[Any, ...]) -> Any:
    connection.send_packed_command(pack(command))
    return connection.read_response()


async def _exchange(connection: Any, command: tuple[Any, ...]) -> Any:
    try:
        await connection.send_packed_command(pack(command))
        return await connection.read_response()
    except ResponseError:
        raise  # a whole reply was read: the connection is clean
    except BaseException:  # cancelled or broken: a reply may be pending, never reuse it
        await connection.disconnect(nowait=True)
        raise
