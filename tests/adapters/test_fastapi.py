"""The FastAPI dependency and ASGI middleware over memory and a real (async) Redis."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
import redis
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from hypothesis import event, given, settings
from ratelimit_app.adapters.fastapi import (
    RateLimit,
    RateLimiter,
    RateLimitMiddleware,
    metrics_route,
)
from starlette.types import Message, Receive, Scope, Send

from ratelimit_app.core import ConfigError, Decision
from ratelimit_app.core.events import Event, hub
from ratelimit_app.core.headers import json_bytes, unavailable_body
from ratelimit_app.core.stores.per_loop import PerLoopStore
from ratelimit_app.testing import RedisServer, free_port
from tests.adapters.conftest import BAD_SETTINGS, COMPOSITE, POLICIES, SLOW, stored_tokens
from tests.hostile_settings import (
    PROPERTY_EXAMPLES,
    check_headers,
    settings_dicts,
    visits,
    with_hostile_examples,
)


def make_app(storage_url: str, key_prefix: str, on_breach: Any = None, **extra: Any) -> FastAPI:
    settings = {"STORAGE_URL": storage_url, "KEY_PREFIX": key_prefix, "POLICIES": POLICIES}
    limiter = RateLimiter({**settings, **extra}, on_breach=on_breach)
    app = FastAPI(lifespan=limiter.lifespan)
    limiter.install(app)

    @app.get("/ping", dependencies=[Depends(RateLimit("default"))])
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    @app.post("/upload", dependencies=[Depends(RateLimit("upload", cost=3))])
    def upload() -> dict[str, bool]:  # sync endpoints work too
        return {"uploaded": True}

    @app.get("/free")
    async def free() -> dict[str, bool]:
        return {"free": True}

    return app


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (ASGITransport does not) around an in-process client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
async def client(storage_url: str, key_prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_app(storage_url, key_prefix)) as client:
        yield client


async def test_five_pings_pass_and_the_sixth_is_429(client: httpx.AsyncClient) -> None:
    remaining = [(await client.get("/ping")).headers["X-RateLimit-Remaining"] for _ in range(5)]
    assert remaining == ["4", "3", "2", "1", "0"]
    denied = await client.get("/ping")
    assert denied.status_code == 429
    body = denied.json()
    assert set(body) == {"detail", "retry_after"}
    assert body["retry_after"] == pytest.approx(1 / 0.001, rel=0.01)
    assert denied.headers["Retry-After"] == str(math.ceil(body["retry_after"]))
    assert "throttled" in body["detail"]


async def test_headers_on_allowed_and_denied(client: httpx.AsyncClient) -> None:
    allowed = await client.post("/upload")
    assert allowed.status_code == 200
    assert allowed.json() == {"uploaded": True}
    assert allowed.headers["X-RateLimit-Limit"] == "5"
    assert allowed.headers["X-RateLimit-Remaining"] == "2"
    assert allowed.headers["RateLimit-Policy"] == '"upload";q=5;w=5000'
    assert allowed.headers["RateLimit"].startswith('"upload";r=2;t=')
    assert "Retry-After" not in allowed.headers
    denied = await client.post("/upload")
    assert denied.status_code == 429
    assert denied.headers["X-RateLimit-Remaining"] == "2"
    t = int(denied.headers["RateLimit"].split("t=")[1])
    assert t == int(denied.headers["Retry-After"]) == math.ceil(denied.json()["retry_after"])


async def test_upload_costs_three_from_its_own_bucket(client: httpx.AsyncClient) -> None:
    assert (await client.post("/upload")).status_code == 200
    assert (await client.post("/upload")).status_code == 429
    codes = [(await client.get("/ping")).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]


async def test_unlimited_routes_are_untouched(client: httpx.AsyncClient) -> None:
    for _ in range(10):
        response = await client.get("/free")
        assert response.status_code == 200
        assert not [name for name in response.headers if "ratelimit" in name]


async def _forwarded(client: httpx.AsyncClient, n: int, path: str = "/ping") -> list[int]:
    return [
        (await client.get(path, headers={"X-Forwarded-For": f"203.0.113.{i}"})).status_code
        for i in range(n)
    ]


async def test_forwarded_for_is_ignored_by_default(client: httpx.AsyncClient) -> None:
    assert await _forwarded(client, 6) == [200] * 5 + [429]


async def test_forwarded_for_is_believed_through_a_trusted_proxy(
    storage_url: str, key_prefix: str
) -> None:
    async with serve(make_app(storage_url, key_prefix, TRUSTED_PROXY_COUNT=1)) as client:
        assert await _forwarded(client, 8) == [200] * 8


async def test_middleware_applies_a_global_policy(storage_url: str, key_prefix: str) -> None:
    app = make_app(storage_url, key_prefix)
    app.add_middleware(RateLimitMiddleware, policy="default", exempt_paths=["/ping"])
    async with serve(app) as client:
        first = await client.get("/free")
        assert first.headers["X-RateLimit-Remaining"] == "4"
        assert first.headers["RateLimit-Policy"] == '"default";q=5;w=5000'
        assert [(await client.get("/free")).status_code for _ in range(5)] == [200] * 4 + [429]
        denied = await client.get("/free")
        assert set(denied.json()) == {"detail", "retry_after"}
        assert denied.headers["Retry-After"] == str(math.ceil(denied.json()["retry_after"]))
        assert (await client.get("/ping")).status_code == 429  # dependency, same bucket


async def test_middleware_ignores_forwarded_for_by_default(
    storage_url: str, key_prefix: str
) -> None:
    app = make_app(storage_url, key_prefix)
    app.add_middleware(RateLimitMiddleware)
    async with serve(app) as client:
        assert await _forwarded(client, 6, "/free") == [200] * 5 + [429]


async def test_custom_identity_function(storage_url: str, key_prefix: str) -> None:
    def user(conn: Any) -> str:
        return str(conn.headers.get("x-user", "anonymous"))

    app = FastAPI(lifespan=RateLimiter(
        {"STORAGE_URL": storage_url, "KEY_PREFIX": key_prefix, "POLICIES": POLICIES},
        identity=user).lifespan)  # fmt: skip
    app.add_middleware(RateLimitMiddleware)
    app.add_api_route("/me", lambda: {"me": True})
    async with serve(app) as client:
        codes = [
            (await client.get("/me", headers={"X-User": "ann"})).status_code for _ in range(6)
        ]
        assert codes == [200] * 5 + [429]
        assert (await client.get("/me", headers={"X-User": "bob"})).status_code == 200


async def test_endpoint_receives_the_decision(storage_url: str, key_prefix: str) -> None:
    app = make_app(storage_url, key_prefix)

    @app.get("/left")
    async def left(decision: Annotated[Decision, Depends(RateLimit("default"))]) -> float:
        return float(decision.remaining)

    async with serve(app) as client:
        assert (await client.get("/left")).json() == pytest.approx(4, abs=0.01)


@pytest.mark.parametrize(("bad", "named"), BAD_SETTINGS)
def test_bad_settings_fail_when_the_limiter_is_built(bad: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        make_app("memory://", "rl", **bad)


@pytest.mark.parametrize(
    ("policy", "cost", "named"),
    [("nope", None, "unknown rate-limit policy 'nope'"), ("upload", 9, "cost 9 exceeds")],
)
async def test_bad_limits_fail_at_app_start(policy: str, cost: float | None, named: str) -> None:
    for where in ("dependency", "middleware"):
        app = make_app("memory://", "rl")
        if where == "middleware":
            app.add_middleware(RateLimitMiddleware, policy, cost)  # positional, checked too
        else:
            app.add_api_route(
                "/bad", lambda: None, dependencies=[Depends(RateLimit(policy, cost))]
            )
        with pytest.raises(ConfigError, match=named):
            async with app.router.lifespan_context(app):
                pass  # pragma: no cover - start-up must fail


@pytest.mark.parametrize("coalesce", [True, False])
async def test_200_concurrent_requests_on_async_redis_admit_exactly_50(
    redis_url: str, redis_client: redis.Redis, key_prefix: str, coalesce: bool
) -> None:
    """A pool of 8 connections serves a burst of 200 by waiting, never by failing over,
    with decisions coalesced (the default) or one call each (``COALESCE: False``)."""
    policies = {"default": {"capacity": 50, "refill_rate": 1e-6}, "upload": POLICIES["upload"]}
    app = make_app(
        redis_url, key_prefix, POLICIES=policies, MAX_CONNECTIONS=8, POOL_TIMEOUT=30,
        COALESCE=coalesce,
    )  # fmt: skip
    async with serve(app) as client:
        running = app.state.ratelimit
        assert isinstance(running.limits.store, PerLoopStore)  # one client per event loop
        current = await running.limits.store.current()
        assert current.coalesce is coalesce
        assert current.client.connection_pool.max_connections == 8
        responses = await asyncio.gather(*(client.get("/ping") for _ in range(200)))
        codes = [response.status_code for response in responses]
        limiter = running.limits.limiters["default"]
        assert not limiter.failure.store_is_down
        assert len(limiter.failure.fallback_store) == 0  # no decision came from memory
    assert codes.count(200) == 50
    assert codes.count(429) == 150
    assert stored_tokens(redis_client, f"{key_prefix}:default:127.0.0.1") == pytest.approx(
        0, abs=0.01
    )


@pytest.mark.parametrize(
    ("mode", "during"), [("fallback", 200), ("allow", 200), ("deny", 429), ("raise", 503)]
)
async def test_redis_outage_never_500_and_recovers(
    own_redis: RedisServer, key_prefix: str, mode: str, during: int
) -> None:
    policies = {**POLICIES, "default": {"capacity": 1000, "refill_rate": 0.001}}
    app = make_app(own_redis.url, key_prefix, ON_STORE_ERROR=mode, RETRY_INTERVAL=0.05,
                   SOCKET_TIMEOUT=0.5, POLICIES=policies)  # fmt: skip
    raw, key = own_redis.client(), f"{key_prefix}:default:127.0.0.1"
    async with serve(app) as client:
        assert (await client.get("/ping")).status_code == 200
        assert stored_tokens(raw, key) == pytest.approx(999, abs=0.01)
        own_redis.stop()
        assert [(await client.get("/ping")).status_code for _ in range(20)] == [during] * 20
        if mode == "raise":
            unavailable = await client.get("/ping")
            assert unavailable.headers["Retry-After"] == "1"
            assert unavailable.content == json_bytes(unavailable_body())
        own_redis.start()
        assert stored_tokens(raw, key) is None
        deadline = time.monotonic() + 10
        while stored_tokens(raw, key) is None and time.monotonic() < deadline:
            assert (await client.get("/ping")).status_code in {200, during}
            await asyncio.sleep(0.02)
        assert stored_tokens(raw, key) is not None
        assert (await client.get("/ping")).status_code == 200


async def test_middleware_passes_non_http_scopes_through() -> None:
    """Websocket and lifespan scopes reach the app untouched, without a limiter lookup
    (there is no app state here at all, so any lookup would raise)."""
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        raise AssertionError(f"the middleware answered by itself: {message}")

    middleware = RateLimitMiddleware(inner)
    for kind in ("websocket", "lifespan"):
        for _ in range(8):
            await middleware({"type": kind, "path": "/ws"}, receive, send)
    assert seen == ["websocket"] * 8 + ["lifespan"] * 8


async def test_retry_after_is_never_early_on_the_real_clock(
    storage_url: str, key_prefix: str
) -> None:
    """Wait exactly Retry-After, retry the same request: admitted (memory clock or Redis TIME)."""
    # 4 tokens/s: the 3 an upload costs come back within 0.75 s, so Retry-After is 1,
    # the shortest wait the header can name (it is rounded up, never down to 0).
    shape = {"capacity": 3, "refill_rate": 4.0}
    policies = {"default": shape, "upload": {**shape, "cost": 3}}
    async with serve(make_app(storage_url, key_prefix, POLICIES=policies)) as client:
        assert (await client.post("/upload")).status_code == 200
        denied = await client.post("/upload")
        assert denied.status_code == 429
        await asyncio.sleep(int(denied.headers["Retry-After"]))
        assert (await client.post("/upload")).status_code == 200


def connected(server: RedisServer) -> int:
    """Clients connected to ``server``, not counting this probe."""
    with server.client() as raw:
        return int(raw.info("clients")["connected_clients"]) - 1


def closed_within(server: RedisServer, seconds: float = 10) -> bool:
    """Wait for every client to disconnect (a close may land a moment later)."""
    deadline = time.monotonic() + seconds
    while connected(server) and time.monotonic() < deadline:
        time.sleep(0.02)
    return connected(server) == 0


async def test_lifespan_opens_a_bounded_pool_and_closes_it(
    own_redis: RedisServer, key_prefix: str
) -> None:
    """At most MAX_CONNECTIONS connections while the app runs, none after it stops."""
    app = make_app(own_redis.url, key_prefix, MAX_CONNECTIONS=3)
    async with serve(app) as client:
        codes = [
            r.status_code for r in await asyncio.gather(*(client.get("/ping") for _ in range(30)))
        ]
        during = connected(own_redis)
    assert codes.count(200) == 5
    assert 1 <= during <= 3
    assert closed_within(own_redis)


def test_test_client_without_with_runs_no_lifespan_and_limits_hold(
    storage_url: str, key_prefix: str
) -> None:
    """``TestClient(app)`` outside ``with``: no lifespan, and each request on a new event
    loop; the store opens on first use in each, the buckets are the same."""
    client = TestClient(make_app(storage_url, key_prefix))
    assert [client.get("/ping").status_code for _ in range(6)] == [200] * 5 + [429]
    denied = client.get("/ping")
    assert denied.headers["Retry-After"] == str(math.ceil(denied.json()["retry_after"]))


async def test_asgi_transport_without_lifespan_limits_hold(
    storage_url: str, key_prefix: str
) -> None:
    transport = httpx.ASGITransport(app=make_app(storage_url, key_prefix))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        codes = [(await client.get("/ping")).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]


def test_a_client_opened_in_a_loop_is_closed_when_the_loop_ends(
    own_redis: RedisServer, key_prefix: str
) -> None:
    client = TestClient(make_app(own_redis.url, key_prefix))
    assert [client.get("/ping").status_code for _ in range(3)] == [200] * 3
    assert closed_within(own_redis)


async def test_a_pool_opened_lazily_is_closed_when_the_lifespan_ends(
    own_redis: RedisServer, key_prefix: str
) -> None:
    app = make_app(own_redis.url, key_prefix)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/ping")).status_code == 200  # no lifespan yet: lazily
        assert connected(own_redis) >= 1
        async with app.router.lifespan_context(app):
            assert (await client.get("/ping")).status_code == 200
        assert closed_within(own_redis)
        assert (await client.get("/ping")).status_code == 200  # and opens again on use


def test_without_a_lifespan_bad_limits_fail_the_first_limited_request() -> None:
    app = make_app("memory://", "rl")
    app.add_api_route("/bad", lambda: None, dependencies=[Depends(RateLimit("nope"))])
    client = TestClient(app)
    assert client.get("/free").status_code == 200  # nothing limited, nothing checked
    with pytest.raises(ConfigError, match="RateLimit on /bad: unknown rate-limit policy"):
        client.get("/ping")


def test_an_app_without_install_or_lifespan_says_what_is_missing() -> None:
    app = FastAPI()
    app.add_api_route("/ping", lambda: None, dependencies=[Depends(RateLimit())])
    with pytest.raises(RuntimeError, match=r"call limiter.install\(app\)"):
        TestClient(app).get("/ping")


def test_a_lifespan_without_install_refuses_to_start_when_routes_use_the_dependency() -> None:
    """Without ``install`` a dependency would limit but send no headers and never
    refund: the lifespan says so at start-up. A middleware-only app needs no install."""

    def app_with(install: bool, dependency: bool) -> FastAPI:
        limiter = RateLimiter({"STORAGE_URL": "memory://", "POLICIES": POLICIES})
        app = FastAPI(lifespan=limiter.lifespan)
        if install:
            limiter.install(app)
        else:
            app.add_middleware(RateLimitMiddleware)
        limits = [Depends(RateLimit())] if dependency else []
        app.add_api_route("/ping", lambda: None, dependencies=limits)
        return app

    with pytest.raises(ConfigError, match=r"RateLimit on /ping: .*limiter.install\(app\)"):
        with TestClient(app_with(install=False, dependency=True)):
            pass
    for install, dependency in [(True, True), (False, False)]:
        with TestClient(app_with(install, dependency)) as client:
            assert client.get("/ping").headers["X-RateLimit-Remaining"] == "4"


def test_a_route_added_while_the_app_runs_is_charged_once() -> None:
    """The middleware remembers whether any route has its own ``RateLimit``; a route
    added later is seen, and left to its dependency."""
    limiter = RateLimiter({"STORAGE_URL": "memory://", "POLICIES": POLICIES})
    app = FastAPI(lifespan=limiter.lifespan)
    limiter.install(app)
    app.add_middleware(RateLimitMiddleware)
    app.add_api_route("/free", lambda: None)
    with TestClient(app) as client:
        assert client.get("/free").headers["X-RateLimit-Remaining"] == "4"  # no route has one
        app.add_api_route("/late", lambda: None, dependencies=[Depends(RateLimit())])
        assert client.get("/late").headers["X-RateLimit-Remaining"] == "3"  # once, not twice
        assert client.get("/free").headers["X-RateLimit-Remaining"] == "2"


async def test_a_composite_policy_needs_every_bucket(storage_url: str, key_prefix: str) -> None:
    async with serve(make_app(storage_url, key_prefix, POLICIES=COMPOSITE)) as client:
        codes = [(await client.get("/ping")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        denied = await client.get("/ping")
    assert denied.headers["X-RateLimit-Limit"] == "3"  # the slow bucket holds it back
    assert denied.json()["retry_after"] == pytest.approx(1 / SLOW, rel=0.01)


@pytest.mark.parametrize("mode", ["enforce", "shadow"])
async def test_on_breach_hears_each_refusal_once_while_the_app_runs(
    storage_url: str, key_prefix: str, mode: str
) -> None:
    heard: list[Event] = []
    everything: list[Event] = []
    hub.subscribe(everything.append)
    before = hub.listeners  # the hub before the app exists (install subscribes on_breach)
    app = make_app(storage_url, key_prefix, on_breach=heard.append, MODE=mode)
    try:
        async with serve(app) as client:
            codes = [(await client.get("/ping")).status_code for _ in range(8)]
        after = hub.listeners
    finally:
        hub.unsubscribe(everything.append)
    refused = "shadow_denied" if mode == "shadow" else ("denied", "shed")
    assert codes == ([200] * 8 if mode == "shadow" else [200] * 5 + [429] * 3)
    assert len(heard) == 3 and all(e.outcome in refused for e in heard)
    assert [e.outcome for e in everything][:5] == ["allowed"] * 5 and len(everything) == 8
    assert after == before  # on_breach left with the lifespan


async def test_metrics_route_serves_prometheus_text(storage_url: str, key_prefix: str) -> None:
    app = make_app(storage_url, key_prefix, METRICS=True)
    metrics_route(app)
    async with serve(app) as client:
        await client.get("/ping")
        page = await client.get("/metrics")
    assert page.status_code == 200
    assert 'ratelimit_decisions_total{outcome="allowed",policy="default"}' in page.text


def test_the_schema_documents_429_on_limited_routes_only() -> None:
    schema = make_app("memory://", "rl").openapi()
    for path, method in [("/ping", "get"), ("/upload", "post")]:
        answers = schema["paths"][path][method]["responses"]
        assert answers["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
        body = answers["429"]["content"]["application/json"]["schema"]
        assert set(body["required"]) == {"detail", "retry_after"}
        assert "503" not in answers  # fallback: a store failure is decided in memory
    assert "429" not in schema["paths"]["/free"]["get"]["responses"]


def test_under_raise_and_a_global_middleware_the_schema_adds_503_everywhere() -> None:
    app = make_app("memory://", "rl", ON_STORE_ERROR="raise")
    app.add_middleware(RateLimitMiddleware, policy="default", exempt_paths=["/docs"])
    schema = app.openapi()
    for path, method in [("/ping", "get"), ("/upload", "post"), ("/free", "get")]:
        assert {"429", "503"} <= set(schema["paths"][path][method]["responses"])


async def statuses_outside_the_schema(app: FastAPI, tries: int = 8) -> set[tuple[str, int]]:
    """Call every operation of the app's schema ``tries`` times (past any bucket's
    capacity); what answered with a status the schema does not list for it."""
    found: set[tuple[str, int]] = set()
    async with serve(app) as client:
        for path, operations in app.openapi()["paths"].items():
            for method, operation in operations.items():
                for _ in range(tries):
                    status = (await client.request(method, path)).status_code
                    if str(status) not in operation["responses"]:
                        found.add((f"{method.upper()} {path}", status))
    return found


@pytest.mark.parametrize("middleware", [False, True])
@pytest.mark.parametrize("store", ["memory", "redis-down"])
async def test_every_status_a_route_answers_is_in_its_schema(
    store: str, middleware: bool, key_prefix: str
) -> None:
    """The check Schemathesis calls status-code conformance, on every operation: 200,
    429 once the bucket is empty, and 503 while the store is down under "raise"."""
    url = "memory://" if store == "memory" else f"redis://127.0.0.1:{free_port()}/0"
    app = make_app(url, key_prefix, ON_STORE_ERROR="raise", SOCKET_TIMEOUT=0.5)
    if middleware:
        app.add_middleware(RateLimitMiddleware, policy="upload")
    assert await statuses_outside_the_schema(app) == set()


def policy_app(raw: dict[str, Any]) -> FastAPI:
    """Two routes, each charged its policy's own cost; the settings as generated."""
    limiter = RateLimiter({"STORAGE_URL": "memory://", **raw})
    app = FastAPI(lifespan=limiter.lifespan)
    limiter.install(app)
    for route, policy in enumerate(["default", "upload"]):
        app.get(f"/{route}", dependencies=[Depends(RateLimit(policy))])(lambda: "ok")
    return app


@settings(max_examples=PROPERTY_EXAMPLES, deadline=None)
@with_hostile_examples()
@given(raw=settings_dicts, requests=visits)
def test_accepted_settings_never_give_a_500(raw: dict[str, Any], requests: Any) -> None:
    """Refused when the limiter is built with a ConfigError (nothing else), or only 200s
    and 429s (TestClient raises any exception the app lets through)."""
    try:
        app = policy_app(raw)
    except ConfigError:
        event("refused when built")
        return
    event("accepted")
    with TestClient(app) as client:
        for route, forwarded_for in requests:
            headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
            response = client.get(f"/{route}", headers=headers)
            check_headers(response.status_code, response.headers)
