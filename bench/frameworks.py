"""Requests per second through Flask and FastAPI, bare and behind each rate limiter.

In-process, one client, one identity, limits far above the load (every request is
admitted): Flask by calling the WSGI app directly, FastAPI by calling the ASGI app directly
(lifespan entered once). Each row shows the median and the best of ``--repeat`` rounds of
``--seconds``; "overhead" is the extra time per request against the bare endpoint of the
same framework, from the best rounds (on a shared machine the best round is the one least
disturbed by other load). "client CPU" is this process's CPU time per request (median),
which other load on the machine barely moves; it excludes the Redis server's own work.
Peers: Flask-Limiter and slowapi (both on ``limits``, fixed window), on the same store.

    python3 -m bench.frameworks [--seconds 1] [--repeat 3] [--redis-url URL]

Redis comes from ``--redis-url`` or ``REDIS_URL``, else a private redis-server is started
for the run.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from fastapi import Depends, FastAPI, Request, Response
from flask import Flask, jsonify
from ratelimit_app.adapters.fastapi import RateLimit, RateLimitMiddleware
from ratelimit_app.adapters.fastapi import RateLimiter as FastAPILimiter
from ratelimit_app.adapters.flask import RateLimiter as FlaskLimiter
from starlette.types import Message
from werkzeug.test import EnvironBuilder

from ratelimit_app.testing import redis_url_or_private

from . import cli
from .tables import markdown_table
from .timing import Sample, athroughput, hot_key, interleaved, spread, throughput

WARM_UP = 50  # requests before timing: connections, script load, caches
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

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], object]:
        statuses.append(status)
        return lambda _data: None  # the legacy write() callable; Flask never calls it

    def call() -> int:
        body = app(dict(base), start_response)
        for _chunk in body:
            pass
        getattr(body, "close", lambda: None)()
        return int(statuses.pop()[:3])

    for _ in range(WARM_UP):
        assert call() == 200, "the bench expects every request to be admitted"
    return throughput(lambda _key: call(), hot_key(), seconds, cpu_clock=time.process_time)


def fastapi_app(kind: str, url: str, coalesce: bool = True) -> FastAPI:
    """``bare``, ``ours`` (dependency), ``ours-mw`` (middleware) or ``slowapi``."""
    settings = {"STORAGE_URL": url, "KEY_PREFIX": "bencha", "POLICIES": {"default": HUGE}}
    settings["COALESCE"] = coalesce
    if kind == "slowapi":
        return _slowapi_app(url)
    ours = FastAPILimiter(settings)
    app = FastAPI(lifespan=ours.lifespan if kind != "bare" else None)
    deps = [Depends(RateLimit("default"))] if kind == "ours" else []
    if kind == "ours":
        ours.install(app)  # as the README sets it up: headers and refunds need it
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
        for _ in range(WARM_UP):
            assert await _asgi_get(app) == 200, "the bench expects every request admitted"

        async def get(_key: str) -> int:
            return await _asgi_get(app)

        return await athroughput(get, hot_key(), seconds, cpu_clock=time.process_time)


def fastapi_rate(app: FastAPI, seconds: float) -> Sample:
    return asyncio.run(_fastapi_rate_async(app, seconds))


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
    args = cli.parse_rounds(__doc__)
    warnings.simplefilter("ignore")  # peers' deprecation chatter is not the measurement
    with redis_url_or_private(args.redis_url) as url:
        configs = list(rows(url))
        runs: list[list[Sample]] = [[] for _ in configs]
        for index, (_, _, _, run) in interleaved(configs, args.repeat):
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
    """(median rate, best rate, median client CPU) of the rounds."""
    median, _slowest, best = spread(rate for rate, _ in samples)
    return median, best, spread(cpu for _, cpu in samples)[0]


def table(results: list[Row]) -> str:
    bare = {row.framework: row for row in results if row.limiter == "none (bare)"}
    cells = []
    for row in results:
        base = bare[row.framework]
        wall = cpu = "-"
        if row is not base:
            wall = f"{1e6 / row.best - 1e6 / base.best:.0f}"
            cpu = f"{row.cpu - base.cpu:.0f}"
        rates = [f"{row.median:,.0f}", f"{row.best:,.0f}", wall, f"{row.cpu:.0f}", cpu]
        cells.append([row.framework, row.limiter, row.store, *rates])
    header = ["framework", "limiter", "store", "req/s median", "req/s best"]
    header += ["overhead vs bare, µs/req (best)", "client CPU µs/req", "CPU overhead µs/req"]
    return markdown_table(header, cells, labels=3)


if __name__ == "__main__":
    main()
