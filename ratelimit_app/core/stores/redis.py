"""Buckets in Redis: one EVALSHA round trip per decision, sync and async.

Everything but the network call is shared between ``RedisStore`` and
``AsyncRedisStore``: the script, argument building, reply parsing and the translation of
redis-py's exceptions into ``StoreError``. Works with ``redis.Redis``,
``redis.cluster.RedisCluster`` and their ``redis.asyncio`` twins: the script touches one
key, so a cluster routes it by that key's slot.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from ..bucket import BucketState, Decision, binding, decide
from .base import Configs, Keys, StoreError

__all__ = [
    "ADJUST_SCRIPT",
    "BUCKET_SCRIPT",
    "AsyncRedisStore",
    "RedisStore",
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

Clock = Callable[[], float]


def _num(value: float) -> str:
    """repr() round-trips a float exactly; Lua's tonumber reads it back bit for bit."""
    return repr(float(value))


class _RedisBase:
    def __init__(self, client: Any, clock: Clock | None = None) -> None:
        self.client = client
        self.clock = clock

    def _command(self, keys: Keys, configs: Configs, cost: float, write: bool) -> tuple[Any, ...]:
        return self._script_call(BUCKET_SHA, keys, configs, cost, write)

    def _script_call(
        self, sha: str, keys: Keys, configs: Configs, number: float, flag: bool
    ) -> tuple[Any, ...]:
        """Both scripts take the same arguments: a number (cost, tokens to add), now, a
        flag (take / empty), then capacity, rate and ttl per bucket."""
        now = "" if self.clock is None else _num(self.clock())
        args: list[Any] = ["EVALSHA", sha, len(keys), *keys]
        args += (_num(number), now, "1" if flag else "0")
        for config in configs:
            args += (_num(config.capacity), _num(config.refill_rate), config.ttl)
        return tuple(args)

    def _adjust_command(
        self, keys: Keys, configs: Configs, add: float, empty: bool
    ) -> tuple[Any, ...]:
        return self._script_call(ADJUST_SHA, keys, configs, add, empty)

    @staticmethod
    def _eval(command: tuple[Any, ...]) -> tuple[Any, ...]:
        """The same call as EVAL with the script's text, for a server that lost the script.

        Routed by the key like EVALSHA (so a cluster asks only the key's master, not every
        node as SCRIPT LOAD would, which fails while any master is down), and it caches
        the script there for the next EVALSHA.
        """
        return ("EVAL", _SCRIPTS[command[1]], *command[2:])

    @staticmethod
    def _decision(reply: Sequence[Any], configs: Configs, cost: float) -> Decision:
        allowed = bool(int(reply[0]))
        if len(configs) == 1:
            return decide(configs[0], cost, allowed, float(reply[1]))
        return binding(
            [
                decide(config, cost, allowed, float(raw))
                for config, raw in zip(configs, reply[1:], strict=True)
            ]
        )

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

    def _run(self, command: tuple[Any, ...]) -> Any:
        client = self.client
        with translated():
            try:
                return client.execute_command(*command)
            except NoScriptError:
                return client.execute_command(*self._eval(command))

    def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        return self._decision(self._run(self._command(keys, configs, cost, True)), configs, cost)

    def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        return self._decision(self._run(self._command(keys, configs, 0.0, False)), configs, 0.0)

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
    """``client`` is a ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``."""

    _initialized = False

    async def _run(self, command: tuple[Any, ...]) -> Any:
        client = self.client
        with translated():
            if not self._initialized:
                await self._initialize()
            try:
                return await client.execute_command(*command)
            except NoScriptError:
                return await client.execute_command(*self._eval(command))

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
        reply = await self._run(self._command(keys, configs, cost, True))
        return self._decision(reply, configs, cost)

    async def peek_all(self, keys: Keys, configs: Configs) -> Decision:
        reply = await self._run(self._command(keys, configs, 0.0, False))
        return self._decision(reply, configs, 0.0)

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


def _glob_literal(text: str) -> str:
    """``text`` with SCAN's glob characters escaped, so it matches only itself."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)
