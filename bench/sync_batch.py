"""Would coalescing pay for sync threads? A leader-thread prototype beside the plain store.

    python3 -m bench.sync_batch [--seconds 1] [--repeat 3] [--redis-url URL]

``LeaderStore`` is a sketch, not shipped: a thread that finds no call in flight becomes
the leader and sends its own request plus whatever other threads queued meanwhile, in
one script call (the same call ``AsyncRedisStore`` makes), then hands each waiter its
decision. Rows: decisions per second and p99 over 10,000 keys from 1, 4, 16 and 50
threads (gunicorn gthread workers usually run 2-8; Django's threaded dev server one per
request), the plain ``RedisStore`` against the prototype.
"""

from __future__ import annotations

import statistics
import threading
from typing import Any

import redis

from ratelimit_app.core import RedisStore, TokenBucketRateLimiter
from ratelimit_app.core.bucket import Decision
from ratelimit_app.core.stores.base import Configs, Keys
from ratelimit_app.core.stores.redis import Request
from ratelimit_app.testing import redis_url_or_private

from . import cli
from .core import OPEN
from .latency import percentiles, sync_sample
from .tables import markdown_table

THREADS = (1, 4, 16, 50)


class LeaderStore(RedisStore):
    """The prototype: followers wait on an event while the leader sends their batch."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self._lock = threading.Lock()
        self._queue: list[tuple[Request, list[Any]]] = []
        self._busy = False

    def take_all(self, keys: Keys, configs: Configs, cost: float) -> Decision:
        slot: list[Any] = [None, threading.Event()]
        with self._lock:
            self._queue.append((self._request(keys, configs, cost), slot))
            lead, self._busy = not self._busy, True
        if not lead:
            slot[1].wait()
            return slot[0]  # type: ignore[no-any-return]
        while True:
            with self._lock:
                batch, self._queue = self._queue[:100], self._queue[100:]
                if not batch:
                    self._busy = False
                    return slot[0]  # type: ignore[no-any-return]
            requests = [request for request, _ in batch]
            decisions = self._decisions(self._run(self._command(requests)), requests)
            for (_, waiting), decision in zip(batch, decisions, strict=True):
                waiting[0] = decision
                waiting[1].set()


def main() -> None:
    args = cli.parse_rounds(__doc__)
    rows = []
    with redis_url_or_private(args.redis_url) as url:
        client = redis.Redis.from_url(url, max_connections=64)
        stores = {"RedisStore": RedisStore(client), "leader-thread prototype": LeaderStore(client)}
        calls = {
            name: TokenBucketRateLimiter(OPEN, store, key_prefix=f"sb{i}").allow_request
            for i, (name, store) in enumerate(stores.items())
        }
        for threads in THREADS:
            for name, call in calls.items():
                samples = [
                    sync_sample(call, "10,000 keys", args.seconds, threads)
                    for _ in range(args.repeat)
                ]
                rate = statistics.median(s[0] for s in samples)
                p99 = statistics.median(percentiles(s[1])[1] for s in samples)
                rows.append([name, str(threads), f"{rate:,.0f}", f"{p99:,.0f}"])
        client.close()
    print(markdown_table(["store", "threads", "decisions/s", "p99 us"], rows, labels=2))


if __name__ == "__main__":
    main()
