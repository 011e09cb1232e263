"""An async Django view's decision cost: a worker thread per decision, or a native client.

    python3 -m bench.django_async [--seconds 1.0] [--repeat 3] [--redis-url URL]

Async views used to reach Redis by running the sync cache client in a worker thread
(``sync_to_async``, as Django's own async cache methods do): "thread hop" below. They now
await a ``redis.asyncio`` client built from the same ``CACHES`` entry, one per event loop:
"native". Both go through ``AsyncTokenBucketRateLimiter`` on django-redis, with 1 and 50
concurrent tasks, on one hot key and on 10,000 keys. The CPU column is the whole process
(worker threads included) per decision.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time

from . import cli
from .bootstrap import configure_django
from .tables import markdown_table
from .timing import athroughput, hot_key, interleaved, many_keys, spread

Sample = tuple[float, float]


async def rows(args: argparse.Namespace) -> list[list[str]]:
    from ratelimit_app.cache_store import AsyncDjangoCacheStore, DjangoCacheStore, ThreadedStore
    from ratelimit_app.core import AsyncTokenBucketRateLimiter, RateLimitConfig

    open_bucket = RateLimitConfig(capacity=1e12, refill_rate=1e12)
    sync = DjangoCacheStore("redis")
    stores = [
        ("thread hop (before)", ThreadedStore(sync)),
        ("native (after)", AsyncDjangoCacheStore(sync=sync)),
    ]
    cases = []
    for tasks in (1, 50):
        for keys, make in (("hot key", hot_key), ("10,000 keys", many_keys)):
            for label, store in stores:
                limiter = AsyncTokenBucketRateLimiter(open_bucket, store, shed_denials=False)
                cases.append((label, tasks, keys, limiter.allow_request, make))
    samples: list[list[Sample]] = [[] for _ in cases]
    for index, (_label, tasks, _keys, call, make) in interleaved(cases, args.repeat):
        sample = await athroughput(call, make(), args.seconds, tasks, time.process_time)
        samples[index].append(sample)
    table = []
    for (label, tasks, keys, _call, _make), taken in zip(cases, samples, strict=True):
        median, low, high = spread(rate for rate, _cpu in taken)
        cpu = spread(cpu for _rate, cpu in taken)[0]
        rate = f"{median:,.0f} [{low:,.0f}-{high:,.0f}]"
        table.append([label, str(tasks), keys, rate, f"{1e6 / median:.1f}", f"{cpu:.1f}"])
    return table


def main() -> None:
    args = cli.parse_rounds(__doc__)
    from ratelimit_app.testing import redis_url_or_private

    with redis_url_or_private(args.redis_url) as url:
        configure_django(url)
        table = asyncio.run(rows(args))
    print(
        f"# bench/django_async.py ({platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} cpus; {args.repeat} runs of {args.seconds}s: median [min-max])\n"
    )
    header = ["async decision", "tasks", "keys", "decisions/s", "us/decision", "CPU us"]
    print(markdown_table(header, table, labels=3))


if __name__ == "__main__":
    main()
