"""This project against its peers, every workload in one run, printed as one table.

    python3 -m pip install -r requirements-bench.txt && python3 -m bench.peers [--quick]

Each library runs the same workloads on process memory and on one shared real Redis
(``--redis-url``, else ``REDIS_URL``, else a private ``redis-server`` started here):
decisions per second and client CPU per decision on one hot key and over 10,000 keys
(one thread), decisions per second over 10,000 keys from 50 asyncio tasks where the
library has an async API, how many requests 4 processes x 16 threads get through a
bucket of 100 (memory: 1 process x 16 threads, since memory is per process), round
trips and Redis commands per decision (admitted, and on a drained key), and Redis
memory per bucket. Repetitions interleave the libraries, so load from elsewhere on
the machine falls on all of them alike. Throughput runs use a bucket of 100 refilled over 60 s
(the hot key is then mostly denials, the 10,000 keys mostly admissions); exactness
uses 100 per hour. Each cell is the median and the min-max of the repetitions; ``xR``
is the peer's median over this project's on the same store (above 1: the peer is
faster or uses more).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import multiprocessing.pool
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from ratelimit_app.testing import redis_url_or_private

from . import cli, measure, timing
from .contract import Quota
from .costs import install_round_trip_counter, redis_cost
from .peer_adapters import OURS, PEERS, build, build_async
from .report import Row, render

THROUGHPUT = Quota(capacity=100, period=60)
EXACT = Quota(capacity=100, period=3600)
KEYS = 10_000
TASKS = 50
PROCESSES = 4
THREADS = 16
BACKENDS = ("memory", "redis")


@dataclass(frozen=True)
class Plan:
    reps: int
    seconds: float


def spread_keys(tag: str) -> Iterator[str]:
    keys = [f"{tag}-k{i}" for i in range(KEYS)]
    random.Random(7).shuffle(keys)
    return itertools.cycle(keys)


def sync_phase(rows: list[Row], url: str, plan: Plan) -> None:
    """Repetitions interleave the rows (``timing.interleaved``)."""
    runs = []
    for row in rows:
        decide = build(row.name, row.backend, url, THROUGHPUT)
        for metric, keys in (
            ("hot", itertools.repeat(f"{row.tag}-hot")),
            ("spread", spread_keys(row.tag)),
        ):
            timing.throughput(decide, keys, plan.seconds / 5)  # warm-up: connections, scripts
            runs.append((row, metric, decide, keys))
    for _index, (row, metric, decide, keys) in timing.interleaved(runs, plan.reps):
        rate, cpu = timing.throughput(decide, keys, plan.seconds)
        row.samples.setdefault(metric, []).append(rate)
        row.samples.setdefault(f"cpu_{metric}", []).append(cpu)


async def async_phase(rows: list[Row], url: str, plan: Plan) -> None:
    runs = []
    for row in rows:
        decide = build_async(row.name, row.backend, url, THROUGHPUT)
        if decide is not None:
            keys = spread_keys(row.tag + "a")
            await timing.athroughput(decide, keys, plan.seconds / 5, TASKS)
            runs.append((row, decide, keys))
    for _index, (row, decide, keys) in timing.interleaved(runs, plan.reps):
        rate, _cpu = await timing.athroughput(decide, keys, plan.seconds, TASKS)
        row.samples.setdefault("async", []).append(rate)


def exact_once(row: Row, url: str, rep: int, pool: multiprocessing.pool.Pool) -> int:
    """Redis: 4 processes x 16 threads. Memory is per process: 16 threads in this one."""
    key = f"{row.tag}-exact{rep}"
    at = time.time() + 0.5
    if row.backend == "memory":
        decide = build(row.name, row.backend, url, EXACT)
        decide(f"{key}-warm")
        return measure.admit_in_threads(decide, key, THREADS, 10, at)
    args = (row.name, row.backend, url, EXACT, key, THREADS, at)
    return sum(pool.starmap(measure.exact_worker, [args] * PROCESSES, chunksize=1))


def exact_phase(rows: list[Row], url: str, plan: Plan, pool: multiprocessing.pool.Pool) -> None:
    for rep in range(plan.reps):
        for row in rows:
            row.samples.setdefault("exact", []).append(exact_once(row, url, rep, pool))


def cost_phase(rows: list[Row], url: str) -> None:
    admin = redis.Redis.from_url(url)
    for row in (row for row in rows if row.backend == "redis"):
        decide = build(row.name, row.backend, url, THROUGHPUT)
        decide(f"{row.tag}-cost-warm")
        trips, commands, row.mix = redis_cost(decide, admin, measure.allowed_path(row.tag))
        row.samples["trips"], row.samples["commands"] = [trips], [commands]
        drained = measure.denied_path(decide, row.tag, THROUGHPUT.capacity)
        trips, commands, row.denied_mix = redis_cost(decide, admin, drained)
        row.samples["trips_denied"], row.samples["commands_denied"] = [trips], [commands]
        row.samples["mem1"] = [measure.bytes_per_bucket(decide, admin, row.tag, 1, 200)]
        row.samples["mem100"] = [measure.bytes_per_bucket(decide, admin, row.tag, 100, 10)]
    admin.close()


def run_all(rows: list[Row], url: str, plan: Plan) -> None:
    phases = ("throughput", "async throughput", "exactness", "Redis costs")
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES, initializer=measure.warm_worker) as pool:
        for phase in phases:
            print(f"  {phase} ...", file=sys.stderr, flush=True)
            if phase == "throughput":
                sync_phase(rows, url, plan)
            elif phase == "async throughput":
                asyncio.run(async_phase(rows, url, plan))
            elif phase == "exactness":
                exact_phase(rows, url, plan, pool)
            else:
                cost_phase(rows, url)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="3 short repetitions")
    parser.add_argument("--only", action="append", help="run only these libraries (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    plan = Plan(reps=3, seconds=0.15) if args.quick else Plan(reps=5, seconds=0.5)
    specs = [s for s in PEERS if not args.only or s.name == OURS or s.name in args.only]
    run = uuid.uuid4().hex[:6]
    rows = [Row(s.name, b, f"b{run}{i}{b[0]}") for i, s in enumerate(specs) for b in BACKENDS]
    install_round_trip_counter()
    started, load = time.perf_counter(), os.getloadavg()
    with redis_url_or_private(args.redis_url) as url:
        server = redis.Redis.from_url(url).info("server")["redis_version"]
        run_all(rows, url, plan)
    took = time.perf_counter() - started
    print(render(rows, plan.reps, plan.seconds, server, took, OURS, load))


if __name__ == "__main__":
    main()
