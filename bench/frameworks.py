"""Requests per second through Flask and FastAPI, bare and behind each rate limiter.

In-process, one client, one identity, limits far above the load (every request is
admitted): Flask by calling the WSGI app directly, FastAPI by calling the ASGI app directly
(lifespan entered once). Each row shows the median and the best of ``--repeat`` rounds of
``--seconds``; "overhead" is the extra time per request against the bare endpoint of the
same framework, from the best rounds (on a shared machine the best round is the one least
disturbed by other load). "client CPU" is this process's CPU time per request (median),
which other load on the machine barely moves; it excludes the Redis server's own work.
Peers: Flask-Limiter and slowapi (both on ``limits``, fixed window), on the same store.

    python3 bench/frameworks.py [--seconds 1] [--repeat 3]

Redis comes from ``REDIS_URL``, else a private redis-server is started for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi import Depends, FastAPI, Request, Response
from flask import Flask, jsonify
from ratelimit_app.adapters.fastapi import RateLimit, RateLimitMiddleware
from ratelimit_app.adapters.fastapi import RateLimiter as FastAPILimiter
from ratelimit_app.adapters.flask import RateLimiter as FlaskLimiter
from starlette.types import Message
from werkzeug.test import EnvironBuilder

Sample = tuple[float, float]  # requests per second, CPU microseconds per request
HUGE = {"capacity": 1e9, "refill_rate": 1e9}
PEER_LIMIT = "1000000000 per hour"


def flask_app(kind: str, url: str) -> Flask:
    """``bare``, ``ours`` (our extension) or ``flask-limiter`` on ``url``."""
    app = Flask(__name__)
    view: Callable[[], Any] = lambda: jsonify(pong=True)  # noqa: E731
    if kind == "ours":
        limiter = FlaskLimiter(STORAGE_URL=url, KEY_PREFIX="benchf", POLICIES={"default": HUGE})
        view = limiter.limit("default")(lambda: jsonify(pong=True))
        limiter.init_app(app)
    elif kind == "flask-limiter":
        from flask_limiter import Limiter
        from flask_limiter.util import get_remote_address

        peer = Limiter(get_remote_address, app=app, storage_uri=url, headers_enabled=True)
        view = peer.limit(PEER_LIMIT)(lambda: jsonify(pong=True))
    app.add_url_rule("/ping", "ping", view)
    return app


def flask_rate(app: Flask, seconds: float) -> Sample:
    """Straight WSGI calls, as a server makes them (Flask's test client would add its own
    request building and response parsing, per header, to every row)."""
    environ = EnvironBuilder(path="/ping", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    base = environ.get_environ()
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    def call() -> int:
        body = app(dict(base), start_response)
        for _chunk in body:
            pass
        getattr(body, "close", lambda: None)()
        return int(statuses.pop()[:3])

    return _rate(call, seconds)


def _rate(call: Callable[[], int], seconds: float) -> Sample:
    for _ in range(50):  # warm-up: connections, script load, caches
        assert call() == 200, "the bench expects every request to be admitted"
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            call()
        done += 50
    return done / elapsed, (time.process_time() - cpu) * 1e6 / done


def fastapi_app(kind: str, url: str) -> FastAPI:
    """``bare``, ``ours`` (dependency), ``ours-mw`` (middleware) or ``slowapi``."""
    settings = {"STORAGE_URL": url, "KEY_PREFIX": "bencha", "POLICIES": {"default": HUGE}}
    if kind == "slowapi":
        return _slowapi_app(url)
    ours = FastAPILimiter(settings)
    app = FastAPI(lifespan=ours.lifespan if kind != "bare" else None)
    deps = [Depends(RateLimit("default"))] if kind == "ours" else []
    if kind == "ours-mw":
        app.add_middleware(RateLimitMiddleware)

    @app.get("/ping", dependencies=deps)
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    return app


def _slowapi_app(url: str) -> FastAPI:
    from slowapi import Limiter, _rate_limit_exceeded_handler
    from slowapi.errors import RateLimitExceeded
    from slowapi.util import get_remote_address

    peer = Limiter(key_func=get_remote_address, storage_uri=url, headers_enabled=True)
    app = FastAPI()
    app.state.limiter = peer
    app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]

    @app.get("/ping")
    @peer.limit(PEER_LIMIT)
    async def ping(request: Request, response: Response) -> dict[str, bool]:
        return {"pong": True}

    return app


async def _asgi_get(app: FastAPI) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/ping", "raw_path": b"/ping", "query_string": b"",
        "root_path": "", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 5000),
        "server": ("bench", 80), "state": {},
    }  # fmt: skip
    status = [0]

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    await app(scope, receive, send)
    return status[0]


async def _fastapi_rate_async(app: FastAPI, seconds: float) -> Sample:
    async with app.router.lifespan_context(app):
        for _ in range(50):
            assert await _asgi_get(app) == 200, "the bench expects every request admitted"
        done, start, cpu = 0, time.perf_counter(), time.process_time()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(50):
                await _asgi_get(app)
            done += 50
        return done / elapsed, (time.process_time() - cpu) * 1e6 / done


def fastapi_rate(app: FastAPI, seconds: float) -> Sample:
    return asyncio.run(_fastapi_rate_async(app, seconds))


def redis_url() -> AbstractContextManager[str]:
    from ratelimit_app.testing import redis_url_or_private

    return redis_url_or_private(os.environ.get("REDIS_URL"))


def _flask_run(kind: str, url: str) -> Callable[[float], Sample]:
    return lambda seconds: flask_rate(flask_app(kind, url), seconds)


def _fastapi_run(kind: str, url: str) -> Callable[[float], Sample]:
    return lambda seconds: fastapi_rate(fastapi_app(kind, url), seconds)


def rows(redis: str) -> Iterator[tuple[str, str, str, Callable[[float], Sample]]]:
    """(framework, limiter, store, run) for every measured configuration."""
    stores = (("memory", "memory://"), ("redis", redis))
    yield "Flask", "none (bare)", "-", _flask_run("bare", "memory://")
    for kind, label in (("ours", "ratelimit_app"), ("flask-limiter", "Flask-Limiter")):
        for store, url in stores:
            yield "Flask", label, store, _flask_run(kind, url)
    yield "FastAPI", "none (bare)", "-", _fastapi_run("bare", "memory://")
    fastapi_kinds = (
        ("ours", "ratelimit_app (dependency)"),
        ("ours-mw", "ratelimit_app (middleware)"),
        ("slowapi", "slowapi"),
    )
    for kind, label in fastapi_kinds:
        for store, url in stores:
            yield "FastAPI", label, store, _fastapi_run(kind, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # peers' deprecation chatter is not the measurement
    with ExitStack() as stack:
        url = stack.enter_context(redis_url())
        configs = list(rows(url))
        runs: list[list[Sample]] = [[] for _ in configs]
        for _ in range(args.repeat):  # rounds, so drift in machine load hits every row alike
            for index, (_, _, _, run) in enumerate(configs):
                runs[index].append(run(args.seconds))
    results = [
        Row(fw, lim, store, *_summary(samples))
        for (fw, lim, store, _), samples in zip(configs, runs, strict=True)
    ]
    print(table(results))


class Row(NamedTuple):
    framework: str
    limiter: str
    store: str
    median: float
    best: float
    cpu: float


def _summary(samples: list[Sample]) -> tuple[float, float, float]:
    rates = [rate for rate, _ in samples]
    return statistics.median(rates), max(rates), statistics.median(cpu for _, cpu in samples)


def table(results: list[Row]) -> str:
    bare = {row.framework: row for row in results if row.limiter == "none (bare)"}
    lines = [
        "| framework | limiter | store | req/s median | req/s best "
        "| overhead vs bare, µs/req (best) | client CPU µs/req | CPU overhead µs/req |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results:
        base = bare[row.framework]
        wall = cpu = "-"
        if row is not base:
            wall = f"{1e6 / row.best - 1e6 / base.best:.0f}"
            cpu = f"{row.cpu - base.cpu:.0f}"
        lines.append(
            f"| {row.framework} | {row.limiter} | {row.store} | {row.median:,.0f} "
            f"| {row.best:,.0f} | {wall} | {row.cpu:.0f} | {cpu} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
