"""Buckets in Redis: one EVALSHA round trip per decision, or per batch of them (async).

Everything but the network call is shared between ``RedisStore`` and
``AsyncRedisStore``: the script, argument building, reply parsing and the translation of
redis-py's exceptions into ``StoreError``. Works with ``redis.Redis``,
``redis.cluster.RedisCluster`` and their ``redis.asyncio`` twins: a call's keys share a
slot (one request's keys share a hash tag; a coalesced batch is split by slot), so a
cluster routes it by its first key.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache, partial
from importlib import resources
from typing import Any, NamedTuple

from redis.exceptions import NoScriptError, RedisClusterException, RedisError, ResponseError

from ..bucket import BucketState, Decision, binding, decide
from ..config import RateLimitConfig, check_count
from .base import Configs, Keys, StoreError
from .coalesce import Coalescer, Results
from .connections import ConnectionCache

__all__ = [
    "ADJUST_SCRIPT",
    "BUCKET_SCRIPT",
    "DEFAULT_MAX_BATCH",
    "AsyncRedisStore",
    "RedisStore",
    "Request",
    "parse_state",
    "translated",
]


def _script(name: str) -> tuple[str, str]:
    text = resources.files(__package__).joinpath(name).read_text("utf-8")
    return text, hashlib.sha1(text.encode("utf-8")).hexdigest()


BUCKET_SCRIPT, BUCKET_SHA = _script("bucket.lua")
ADJUST_SCRIPT, ADJUST_SHA = _script("adjust.lua")
_SCRIPTS = {BUCKET_SHA: BUCKET_SCRIPT, ADJUST_SHA: ADJUST_SCRIPT}
# RedisClusterException is not a RedisError: a cluster with no reachable node raises it.
_FAILURES = (RedisError, OSError, RedisClusterException)
_BATCH = 500  # keys per SCAN step and per MGET
_ONE = (b"1", "1")  # an admission in the reply (bytes, or str with decode_responses)
# Decisions per coalesced call: enough to amortise a round trip many times over, few
# enough that one call stays short inside Redis (about 2 us of script time per decision).
DEFAULT_MAX_BATCH = 100

Clock = Callable[[], float]


def _num(value: float) -> str:
    """repr() round-trips a float exactly; Lua's tonumber reads it back bit for bit."""
    return repr(float(value))


class Request(NamedTuple):
    """One decision as the script reads it: its keys and its fields of the arguments."""

    keys: Keys
    configs: Configs
    cost: float
    fields: str  # JSON numbers: now, number of buckets, cost, then capacity and rate per bucket


@lru_cache(maxsize=1024)
def _bucket_fields(configs: tuple[RateLimitConfig, ...]) -> str:
    """Capacity and rate per bucket, formatted once per policy instead of per request."""
    return ",".join(_num(x) for config in configs for x in (config.capacity, config.refill_rate))


class _RedisBase:
    def __init__(self, client: Any, clock: Clock | None = None) -> None:
        self.client = client
        self.clock = clock
        # A cluster client routes by key (its keyslot); a plain one hands us its pool, and
        # a decision then skips redis-py's generic command path (see _pack).
        self._keyslot: Callable[[str], int] | None = getattr(client, "keyslot", None)
        self._pool: Any = None if self._keyslot else getattr(client, "connection_pool", None)
        if hasattr(self._pool, "sentinel_manager"):
            # A Sentinel-managed connection asks for the master's address only when the pool
            # hands it out; one kept or reconnected on the side would still dial the master
            # that failed. Such a client goes through redis-py's own command path.
            self._pool = None

    def _request(self, keys: Keys, configs: Configs, cost: float) -> Request:
        now = "null" if self.clock is None else _num(self.clock())
        cost_text = "1.0" if cost == 1.0 else _num(cost)
        fields = f"{now},{len(configs)},{cost_text},{_bucket_fields(tuple(configs))}"
        return Request(keys, configs, cost, fields)

    @staticmethod
    def _command(requests: Sequence[Request], write: str = "1") -> tuple[Any, ...]:
        """One EVALSHA deciding ``requests`` in order (``write`` '0': a peek)."""
        if len(requests) == 1:
            only = requests[0]
            fields = f"[{only.fields}]"
            return ("EVALSHA", BUCKET_SHA, len(only.keys), *only.keys, write, fields)
        keys = [key for request in requests for key in request.keys]
        fields = "[" + ",".join([request.fields for request in requests]) + "]"
        return ("EVALSHA", BUCKET_SHA, len(keys), *keys, write, fields)

    def _adjust_command(
        self, keys: Keys, configs: Configs, add: float, empty: bool
    ) -> tuple[Any, ...]:
        """adjust.lua's arguments: tokens to add, now, the empty flag, then capacity, rate
        and ttl per bucket."""
        now = "" if self.clock is None else _num(self.clock())
        args: list[Any] = ["EVALSHA", ADJUST_SHA, len(keys), *keys]
        args += (_num(add), now, "1" if empty else "0")
        for config in configs:
            args += (_num(config.capacity), _num(config.refill_rate), config.ttl)
        return tuple(args)

    @staticmethod
    def _eval(command: tuple[Any, ...]) -> tuple[Any, ...]:
        """The same call as EVAL with the script's text, for a server that lost the script.

        Routed by the key like EVALSHA (so a cluster asks only the key's master, not every
        node as SCRIPT LOAD would, which fails while any master is down), and it caches
        the script there for the next EVALSHA.
        """
        return ("EVAL", _SCRIPTS[command[1]], *command[2:])

    @staticmethod
    def _decisions(reply: bytes | str, requests: Sequence[Request]) -> list[Decision]:
        """The script's reply -> one decision per request."""
        fields, decisions, at = reply.split(), [], 0
        for request in requests:
            decisions.append(_decision(fields, at, request.configs, request.cost))
            at += len(request.configs) + 1
        return decisions

    def failure_scope(self, keys: Keys) -> str | None:
        """The cluster master that owns ``keys`` (``host:port``), so a failure backs off
        that node only; None on a single node (the whole store is one scope)."""
        nodes = getattr(self.client, "nodes_manager", None)
        if nodes is None:
            return None
        try:
            return str(nodes.get_node_from_slot(self.client.keyslot(keys[0])).name)
        except Exception:  # no slot map yet, or the slot is not covered
            return None

    def _mget(self) -> Callable[[list[Any]], Any]:
        """MGET, split per slot on a cluster (``mget_nonatomic``)."""
        return getattr(self.client, "mget_nonatomic", self.client.mget)  # type: ignore[no-any-return]


def _pack(command: tuple[Any, ...]) -> list[bytes]:
    """One command in RESP, as ``send_packed_command`` takes it.

    A decision is sent by hand on a plain client: redis-py's ``execute_command`` spends
    more client CPU (pool checkout with its metrics, retry wrapper, generic packing) than
    the round trip itself on loopback. Our arguments are ASCII (validated names, safe or
    hashed identities, numbers), so the encoding is the same under any client encoding.
    """
    parts = [b"*%d\r\n" % len(command)]
    for arg in command:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return [b"".join(parts)]


def _decision(fields: Sequence[Any], at: int, configs: Configs, cost: float) -> Decision:
    """The decision of the request whose fields start at ``at`` in the split reply."""
    allowed = fields[at] in _ONE
    if len(configs) == 1:
        return decide(configs[0], cost, allowed, float(fields[at + 1]))
    return binding(
        [
            decide(config, cost, allowed, float(raw))
            for config, raw in zip(configs, fields[at + 1 : at + 1 + len(configs)], strict=True)
        ]
    )


@contextmanager
def translated() -> Iterator[None]:
    """The one place redis-py's exceptions become ``StoreError``."""
    try:
        yield
    except _FAILURES as exc:
        raise StoreError(f"redis: {type(exc).__name__}: {exc}") from exc


def parse_state(raw: bytes | str) -> BucketState:
    """Decode the stored ``'<tokens> <updated_at>'`` string."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    tokens, updated = text.split(" ", 1)
    return BucketState(float(tokens), float(updated))


def _keys_and_values(keys: list[Any], values: Sequence[Any]) -> Iterator[tuple[str, BucketState]]:
    for key, raw in zip(keys, values, strict=True):
        if raw is None:
            continue
        try:
            state = parse_state(raw)
        except ValueError:  # another program's value under our prefix: not a bucket
            continue
        yield (key.decode() if isinstance(key, bytes) else key), state


class RedisStore(_RedisBase):
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
        return _decision(reply.split(), 0, configs, cost)

    def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        reply = self._run(self._command((self._request(keys, configs, 0.0),), "0"))
        return _decision(reply.split(), 0, configs, 0.0)

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
        match = _glob_literal(prefix) + "*"
        with translated():
            for key in self.client.scan_iter(match=match, count=_BATCH):
                batch.append(key)
                if len(batch) >= _BATCH:
                    yield from _keys_and_values(batch, self._mget()(batch))
                    batch = []
            if batch:
                yield from _keys_and_values(batch, self._mget()(batch))


class AsyncRedisStore(_RedisBase):
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
        return _decision(reply.split(), 0, configs, cost)

    async def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        reply = await self._run(self._command((self._request(keys, configs, 0.0),), "0"))
        return _decision(reply.split(), 0, configs, 0.0)

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
        match = _glob_literal(prefix) + "*"
        with translated():
            async for key in self.client.scan_iter(match=match, count=_BATCH):
                batch.append(key)
                if len(batch) >= _BATCH:
                    for item in _keys_and_values(batch, await self._mget()(batch)):
                        yield item
                    batch = []
            if batch:
                for item in _keys_and_values(batch, await self._mget()(batch)):
                    yield item


def _exchange_sync(connection: Any, command: tuple[Any, ...]) -> Any:
    connection.send_packed_command(_pack(command))
    return connection.read_response()


async def _exchange(connection: Any, command: tuple[Any, ...]) -> Any:
    try:
        await connection.send_packed_command(_pack(command))
        return await connection.read_response()
    except ResponseError:
        raise  # a whole reply was read: the connection is clean
    except BaseException:  # cancelled or broken: a reply may be pending, never reuse it
        await connection.disconnect(nowait=True)
        raise


def _glob_literal(text: str) -> str:
    """``text`` with SCAN's glob characters escaped, so it matches only itself."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)
