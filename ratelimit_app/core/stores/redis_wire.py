"""What the Redis stores send and read back, shared by ``RedisStore`` and its async twin.

Everything but the network call: the Lua scripts (loaded once, called by SHA), the
arguments of a call, a command packed by hand, the replies parsed into decisions and
bucket states, and the translation of redis-py's exceptions into ``StoreError``. The
stores themselves, with their I/O, are in ``redis.py``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from typing import Any, NamedTuple

from redis.exceptions import RedisClusterException, RedisError

from ..bucket import BucketState, Decision, binding, decide
from ..config import RateLimitConfig
from .base import Configs, Keys, StoreError

__all__ = [
    "ADJUST_SCRIPT",
    "BUCKET_SCRIPT",
    "BUCKET_SHA",
    "Clock",
    "RedisBase",
    "Request",
    "bucket_states",
    "decision_at",
    "glob_literal",
    "pack",
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
_ONE = (b"1", "1")  # an admission in the reply (bytes, or str with decode_responses)

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


class RedisBase:
    """The half of a Redis store its sync and async twins share: the client's routing
    (a cluster's keyslot, a plain client's pool), the calls they build and the replies
    they read."""

    def __init__(self, client: Any, clock: Clock | None = None) -> None:
        self.client = client
        self.clock = clock
        # A cluster client routes by key (its keyslot); a plain one hands us its pool, and
        # a decision then skips redis-py's generic command path (see pack).
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
        """adjust.lua's arguments: tokens to add, now, the empty flag, then capacity and
        rate per bucket."""
        now = "" if self.clock is None else _num(self.clock())
        args: list[Any] = ["EVALSHA", ADJUST_SHA, len(keys), *keys]
        args += (_num(add), now, "1" if empty else "0")
        for config in configs:
            args += (_num(config.capacity), _num(config.refill_rate))
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
            decisions.append(decision_at(fields, at, request.configs, request.cost))
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


def pack(command: tuple[Any, ...]) -> list[bytes]:
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


def decision_at(fields: Sequence[Any], at: int, configs: Configs, cost: float) -> Decision:
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


def bucket_states(keys: list[Any], values: Sequence[Any]) -> Iterator[tuple[str, BucketState]]:
    """The buckets of an MGET reply, skipping keys gone meanwhile and foreign values."""
    for key, raw in zip(keys, values, strict=True):
        if raw is None:
            continue
        try:
            state = parse_state(raw)
        except ValueError:  # another program's value under our prefix: not a bucket
            continue
        yield (key.decode() if isinstance(key, bytes) else key), state


def glob_literal(text: str) -> str:
    """``text`` with SCAN's glob characters escaped, so it matches only itself."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)
