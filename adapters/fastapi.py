"""FastAPI / Starlette glue: a ``RateLimit`` dependency and a pure ASGI middleware.

``RateLimiter(settings)`` parses the settings dict (the Django shape plus the storage
keys of ``ratelimit_app.core.stores.from_url``) when it is built. Its ``lifespan`` opens the store
(a Redis client over a blocking pool, in the app's own event loop), checks every
``RateLimit`` dependency and ``RateLimitMiddleware`` of the app against the policies, and
closes the store at shutdown; ``install(app)`` registers the 429 handler (and the 503 one
for ``ON_STORE_ERROR = "raise"``) and documents both on every limited route of the
app's OpenAPI schema::

    limiter = RateLimiter({"STORAGE_URL": "redis://localhost:6379/0", "POLICIES": {...}})
    app = FastAPI(lifespan=limiter.lifespan)
    limiter.install(app)

    @app.post("/upload", dependencies=[Depends(RateLimit("upload", cost=3))])
    def upload() -> dict[str, str]: ...

While the app runs, its live state (store, limiters) is ``app.state.ratelimit``.

The default identity is the ASGI client address, with ``X-Forwarded-For`` believed only
through ``TRUSTED_PROXY_COUNT`` proxies. Note that uvicorn's ``--proxy-headers`` (on by
default for 127.0.0.1) rewrites that address before the app sees it: let only one of
the two read the header.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ratelimit_app.core import (
    ConfigError,
    Decision,
    Settings,
    StoreError,
    client_ip,
    denial_body,
    parse_settings,
)
from ratelimit_app.core.config import check_policy_name
from ratelimit_app.core.limits import AsyncLimits, async_limits
from ratelimit_app.core.stores.from_url import (
    STORAGE_KEYS,
    close_async_store,
    make_async_store,
    parse_storage_options,
)

__all__ = [
    "RateLimit",
    "RateLimitExceeded",
    "RateLimitMiddleware",
    "RateLimiter",
    "rate_limit_exceeded_handler",
    "store_unavailable_handler",
]

WHERE = "RateLimiter settings"
Identity = Callable[[HTTPConnection], str | Awaitable[str]]


class RateLimitExceeded(HTTPException):
    """A 429 carrying its decision; the installed handler renders the core's body."""

    def __init__(self, decision: Decision, headers: Mapping[str, str]) -> None:
        super().__init__(429, detail=denial_body(decision)["detail"], headers=dict(headers))
        self.decision = decision


async def rate_limit_exceeded_handler(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RateLimitExceeded):  # registered for this class only
        raise exc
    return JSONResponse(denial_body(exc.decision), status_code=429, headers=exc.headers)


async def store_unavailable_handler(request: Request, exc: Exception) -> Response:
    """``ON_STORE_ERROR = "raise"``: a 503 that says why, as in Django, never a 500."""
    return _unavailable()


def _unavailable() -> JSONResponse:
    body = {"detail": "Rate limiting is temporarily unavailable.", "retry_after": 1.0}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})


_WAIT = {"description": "Seconds to wait, rounded up", "schema": {"type": "integer", "minimum": 1}}
_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["detail", "retry_after"],
            "properties": {
                "detail": {"type": "string"},
                "retry_after": {"type": "number", "minimum": 0},
            },
        }
    }
}


def _documented(settings: Settings) -> dict[int | str, dict[str, Any]]:
    """The answers a limited route adds to its OpenAPI responses."""
    answers: dict[int | str, dict[str, Any]] = {
        429: {
            "description": "Rate limited: the caller's bucket holds less than the request "
            "costs. retry_after is the exact wait in seconds.",
            "headers": {"Retry-After": _WAIT},
            "content": _BODY,
        }
    }
    if settings.on_store_error == "raise":
        answers[503] = {
            "description": 'The rate-limit store is unavailable (ON_STORE_ERROR = "raise").',
            "headers": {"Retry-After": _WAIT},
            "content": _BODY,
        }
    return answers


@dataclass(slots=True)
class _Running:
    """What an app needs per request while its lifespan is open."""

    limits: AsyncLimits
    identity: Identity | None

    async def identify(self, conn: HTTPConnection) -> str:
        if self.identity is None:
            peer = conn.client.host if conn.client else None
            trusted = self.limits.settings.trusted_proxy_count
            forwarded = conn.headers.get("x-forwarded-for") if trusted else None
            return client_ip(peer, forwarded, trusted)
        result = self.identity(conn)
        return await result if inspect.isawaitable(result) else result

    async def hit(self, conn: HTTPConnection, policy: str, cost: float | None) -> Decision:
        limits = self.limits
        identity = await self.identify(conn)
        return await limits.limiter(policy).allow_request(identity, limits.cost(policy, cost))

    def headers(self, decision: Decision, policy: str) -> dict[str, str]:
        return self.limits.headers(decision, policy)


def _running(app: Any) -> _Running:
    running = getattr(app.state, "ratelimit", None)
    if not isinstance(running, _Running):
        raise RuntimeError(
            "rate limiter is not running: create the app with "
            "FastAPI(lifespan=limiter.lifespan) (or enter limiter.lifespan(app) in yours)"
        )
    return running


class RateLimiter:
    """Settings, parsed at construction; per-app state lives in ``app.state`` while running."""

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        identity: Identity | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = parse_settings(
            {**(settings or {}), **overrides}, extra_keys=STORAGE_KEYS, where=WHERE
        )
        self.options = parse_storage_options(self.settings.extra, WHERE)
        if "DEFAULT_POLICY" in self.settings.extra:
            raise ConfigError(
                f"{WHERE}['DEFAULT_POLICY']: FastAPI applies a global policy with "
                "app.add_middleware(RateLimitMiddleware, policy=...) instead"
            )
        self.identity = identity

    def install(self, app: FastAPI) -> None:
        """Render denials with the core's JSON body (``{"detail", "retry_after"}``) and
        store failures under ``"raise"`` as a 503; list both among the responses of
        every limited route when the OpenAPI schema is built (routes declared after
        ``install`` included)."""
        app.add_exception_handler(RateLimitExceeded, rate_limit_exceeded_handler)
        app.add_exception_handler(StoreError, store_unavailable_handler)
        build_schema = app.openapi

        def openapi() -> dict[str, Any]:
            if app.openapi_schema is None:
                self.document(app)
            return build_schema()

        app.openapi = openapi  # type: ignore[method-assign]

    def document(self, app: FastAPI) -> None:
        """Add the 429 (and under ``"raise"`` the 503) to each limited route's responses."""
        answers = _documented(self.settings)
        exempt = [set(arguments["exempt_paths"]) for arguments in _middleware_arguments(app)]
        for route in app.routes:
            if not isinstance(route, APIRoute):
                continue
            global_limit = any(route.path not in paths for paths in exempt)
            if global_limit or any(True for _ in _dependencies(route.dependant)):
                for status, answer in answers.items():
                    route.responses.setdefault(status, answer)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Check the app's limits, open the store, and close it when the app stops."""
        self.check_app(app)
        store = make_async_store(self.options)
        app.state.ratelimit = _Running(async_limits(self.settings, store), self.identity)
        try:
            yield
        finally:
            app.state.ratelimit = None
            await close_async_store(store)

    def check_app(self, app: FastAPI) -> None:
        """Every policy and cost named by the app's dependencies and middleware must exist."""
        for where, policy, cost in _declared_limits(app):
            try:
                chosen = self.settings.policy(policy)
                if cost is not None:
                    chosen.check_cost(cost)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None


def _middleware_arguments(app: FastAPI) -> Iterator[dict[str, Any]]:
    """The arguments (defaults filled in) of each ``RateLimitMiddleware`` on the app."""
    for entry in app.user_middleware:
        factory: Any = entry.cls
        if factory is RateLimitMiddleware:
            given = inspect.signature(RateLimitMiddleware).bind(None, *entry.args, **entry.kwargs)
            given.apply_defaults()
            yield given.arguments


def _declared_limits(app: FastAPI) -> Iterator[tuple[str, str, float | None]]:
    for arguments in _middleware_arguments(app):
        yield "RateLimitMiddleware", arguments["policy"], arguments["cost"]
    for route in app.routes:
        if isinstance(route, APIRoute):
            for limit in _dependencies(route.dependant):
                yield f"RateLimit on {route.path}", limit.policy, limit.cost


def _dependencies(dependant: Dependant) -> Iterator[RateLimit]:
    for sub in dependant.dependencies:
        if isinstance(sub.call, RateLimit):
            yield sub.call
        yield from _dependencies(sub)


class RateLimit:
    """``Depends(RateLimit("upload", cost=3))``: 429 when denied, headers either way."""

    def __init__(self, policy: str = "default", cost: float | None = None) -> None:
        self.policy = check_policy_name(policy)
        self.cost = cost

    async def __call__(self, request: Request, response: Response) -> Decision:
        running = _running(request.app)
        decision = await running.hit(request, self.policy, self.cost)
        headers = running.headers(decision, self.policy)
        if not decision.allowed:
            raise RateLimitExceeded(decision, headers)
        response.headers.update(headers)
        return decision


class RateLimitMiddleware:
    """A global policy for every HTTP request, as a pure ASGI middleware.

    Non-HTTP scopes (lifespan, websocket) and ``exempt_paths`` pass straight through; a
    denial is answered here; allowed responses get the headers added to their start
    message. It never reads the request body.
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: str = "default",
        cost: float | None = None,
        exempt_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.policy = check_policy_name(policy)
        self.cost = cost
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        running = _running(scope["app"])
        try:
            decision = await running.hit(HTTPConnection(scope), self.policy, self.cost)
        except StoreError:  # ON_STORE_ERROR = "raise"; outside the app's exception handlers
            await _unavailable()(scope, receive, send)
            return
        headers = running.headers(decision, self.policy)
        if not decision.allowed:
            denial = JSONResponse(denial_body(decision), status_code=429, headers=headers)
            await denial(scope, receive, send)
            return
        raw = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *raw]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
