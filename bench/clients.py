"""What the async Redis client costs: the floor on redis-py's asyncio client and on coredis.

    python3 -m pip install coredis && python3 -m bench.clients [--seconds 1] [--repeat 3]

The same one-at-a-time ``EVALSHA`` of the minimal bucket script (``bench.core.MINIMAL``)
from 1 and 50 tasks on one event loop, over redis-py's ``redis.asyncio`` client and over
coredis (a typed async client with its own connection handling, when installed), beside
this project's coalescing ``AsyncRedisStore`` on redis-py. Cells: median decisions per
second of the rounds and p99 latency in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import redis.asyncio as aredis

from ratelimit_app.core import AsyncRedisStore, AsyncTokenBucketRateLimiter
from ratelimit_app.testing import redis_url_or_private

from . import cli
from .core import MINIMAL, MINIMAL_ARGS, OPEN
from .latency import CALLERS, async_sample, percentiles
from .tables import markdown_table

Call = Callable[[str], Awaitable[object]]


async def calls(url: str, stack: AsyncExitStack) -> dict[str, Call]:
    pool = aredis.BlockingConnectionPool.from_url(url, max_connections=64, timeout=10)
    client = aredis.Redis(connection_pool=pool)
    stack.push_async_callback(pool.disconnect)
    stack.push_async_callback(client.aclose)
    sha = await client.script_load(MINIMAL)
    ours = AsyncTokenBucketRateLimiter(OPEN, AsyncRedisStore(client), key_prefix="cli")

    async def redis_py(key: str) -> object:
        return await client.evalsha(sha, 1, key, *MINIMAL_ARGS)  # type: ignore[misc]

    made: dict[str, Call] = {
        "redis-py asyncio, EVALSHA": redis_py,
        "ratelimit_app on redis-py (coalesced)": ours.allow_request,
    }
    try:
        import coredis
    except ImportError:
        return made
    other: Any = await stack.enter_async_context(coredis.Redis.from_url(url))

    async def with_coredis(key: str) -> object:
        return await other.evalsha(sha, keys=[key], args=list(MINIMAL_ARGS))

    made["coredis, EVALSHA"] = with_coredis
    return made


async def run(url: str, args: argparse.Namespace) -> list[list[str]]:
    async with AsyncExitStack() as stack:
        made = await calls(url, stack)
        rows = []
        for callers in CALLERS:
            for label, call in made.items():
                samples = [
                    await async_sample(call, "hot key", args.seconds, callers)
                    for _ in range(args.repeat)
                ]
                rate = statistics.median(s[0] for s in samples)
                p99 = statistics.median(percentiles(s[1])[1] for s in samples)
                rows.append([label, str(callers), f"{rate:,.0f}", f"{p99:,.0f}"])
    return rows


def main() -> None:
    args = cli.parse_rounds(__doc__)
    with redis_url_or_private(args.redis_url) as url:
        rows = asyncio.run(run(url, args))
    print(markdown_table(["client", "tasks", "decisions/s", "p99 us"], rows, labels=2))


if __name__ == "__main__":
    main()
