"""What decisions cost Redis: round trips the client sends and commands Redis runs.

Round trips are counted on the client: every library here talks to Redis through
redis-py, which writes each command, or each pipeline, with one ``send_packed_command``
call (sync and async) before reading the replies; wrapping that method counts round
trips whatever a library does above it. Commands run inside Redis come from
``INFO commandstats`` deltas after ``CONFIG RESETSTAT`` (the commands a Lua script calls
are counted there too), less the administrative ones the measurement itself sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio.connection
import redis.connection

_TRIPS = [0]
_ADMIN_COMMANDS = {"config", "info", "hello", "client", "ping", "scan", "memory", "select"}


def install_round_trip_counter() -> None:
    """Wrap redis-py's single write path, sync and async, once per process."""
    sync_cls: Any = redis.connection.AbstractConnection
    async_cls: Any = redis.asyncio.connection.AbstractConnection
    if getattr(sync_cls, "_bench_counted", False):
        return
    sync_send, async_send = sync_cls.send_packed_command, async_cls.send_packed_command

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        _TRIPS[0] += 1
        return sync_send(self, *args, **kwargs)

    async def acounted(self: Any, *args: Any, **kwargs: Any) -> Any:
        _TRIPS[0] += 1
        return await async_send(self, *args, **kwargs)

    sync_cls.send_packed_command, async_cls.send_packed_command = counted, acounted
    sync_cls._bench_counted = True


def round_trips() -> int:
    return _TRIPS[0]


def command_stats(client: redis.Redis) -> dict[str, int]:
    """Calls per command since the last ``CONFIG RESETSTAT``, the admin's own left out."""
    stats: dict[str, Any] = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name.removeprefix("cmdstat_").split("|")[0] not in _ADMIN_COMMANDS
    }


def redis_cost(
    decide: Callable[[str], object], admin: redis.Redis, keys: list[str]
) -> tuple[float, float, str]:
    """(round trips, Redis commands, command mix) per decision over ``keys`` in order.

    ``admin`` is a connection of its own: its statistics calls are not counted."""
    admin.config_resetstat()
    before = round_trips()
    for key in keys:
        decide(key)
    trips = round_trips() - before
    stats = command_stats(admin)
    total = len(keys)
    mix = ", ".join(f"{name} {calls / total:g}" for name, calls in sorted(stats.items()))
    return trips / total, sum(stats.values()) / total, mix
