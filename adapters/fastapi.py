"""FastAPI / Starlette glue: a ``RateLimit`` dependency and a pure ASGI middleware.

``RateLimiter(settings)`` parses the settings dict (the Django shape plus the storage
keys of ``ratelimit_app.core.stores.from_url``) when it is built. ``install(app)`` gives
the app its store and limiters (``app.state.ratelimit``) and registers the handler that
renders a 429 or 503 with the core's body. The store connects lazily, on the first
decision in each event loop, so an app works without a running lifespan
(``TestClient(app)`` outside ``with``, httpx's ``ASGITransport``, an app with a lifespan
of its own). ``lifespan`` adds what only a start-up can give: it checks every
``RateLimit`` dependency and ``RateLimitMiddleware`` of the app against the policies
before the first request, and closes the Redis pool at shutdown::

    limiter = RateLimiter({"STORAGE_URL": "redis://localhost:6379/0", "POLICIES": {...}})
    app = FastAPI(lifespan=limiter.lifespan)
    limiter.install(app)

    @app.post("/upload", dependencies=[Depends(RateLimit("default", cost=3))])
    def upload() -> dict[str, str]: ...

Without a lifespan the same checks run at the app's first limited request. With
``ON_STORE_ERROR="raise"`` a failed store is a 503 with ``Retry-After``, never a 500.
``install`` also lists the 429 (and under ``raise`` the 503) among the responses of every
limited route of the app's OpenAPI schema.

The default identity is the ASGI client address, with a proxy header believed only
through ``TRUSTED_PROXIES`` / ``TRUSTED_PROXY_COUNT`` (every line of it). Note that
uvicorn's ``--proxy-headers`` (on by default for 127.0.0.1) rewrites that address before
the app sees it: run uvicorn with ``--no-proxy-headers`` and let the limiter read it.

``RateLimit`` and ``RateLimitMiddleware`` take a ``key``, ``exempt_when``,
``deduct_when`` and ``charge_on_status`` of their own (``ratelimit_app.core``); callables
of the request receive the ``HTTPConnection`` and may be async. ``user`` (a callable of
the connection) gives the user for the ``user`` keys and ``EXEMPT`` (default:
``scope["user"]``, set by Starlette's ``AuthenticationMiddleware``). Refunds are made
after the response by a small ASGI middleware ``install`` adds; ``deduct_when`` receives
a ``Response`` with the status and headers (not the body). A CORS preflight costs
nothing, and a 405 is refunded.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Unpack

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ratelimit_app.core import (
    ConfigError,
    Decision,
    Settings,
    StoreError,
    denial_body,
    parse_settings,
)
from ratelimit_app.core.bucket import binding
from ratelimit_app.core.config import check_policy_name
from ratelimit_app.core.events import BREACHES, Listener, hub, scoped
from ratelimit_app.core.exemptions import is_preflight
from ratelimit_app.core.headers import UNAVAILABLE_HEADERS, json_bytes, unavailable_body
from ratelimit_app.core.limits import AsyncLimits, async_limits
from ratelimit_app.core.request_keys import KeyRule, own_key
from ratelimit_app.core.request_limits import Charge, Limit, Rules, acheck, asettle, bind
from ratelimit_app.core.stores.from_url import (
    STORAGE_KEYS,
    close_async_store,
    make_lazy_async_store,
    parse_storage_options,
)
from ratelimit_app.core.workers import warn_if_split

__all__ = [
    "RateLimit",
    "RateLimitExceeded",
    "RateLimitMiddleware",
    "RateLimitUnavailable",
    "RateLimiter",
    "metrics_route",
    "rate_limit_exceeded_handler",
]

WHERE = "RateLimiter settings"
Identity = Callable[[HTTPConnection], str | Awaitable[str]]
_CHARGES = "ratelimit_app.charges"  # ASGI scope key: the dependencies' charges to settle


class _Answer(HTTPException):
    """An answer the limiter gives instead of the endpoint, with the core's JSON body."""

    def __init__(self, status: int, body: dict[str, Any], headers: Mapping[str, str]) -> None:
        super().__init__(status, detail=body["detail"], headers=dict(headers))
        self.body = body

    def response(self) -> Response:
        return _json(self.body, self.status_code, self.headers)


class RateLimitExceeded(_Answer):
    """A 429 carrying its decision."""

    def __init__(self, decision: Decision, headers: Mapping[str, str]) -> None:
        super().__init__(429, denial_body(decision), headers)
        self.decision = decision


class RateLimitUnavailable(_Answer):
    """``ON_STORE_ERROR="raise"`` and the store failed: a 503, never a 500."""

    def __init__(self) -> None:
        super().__init__(503, unavailable_body(), UNAVAILABLE_HEADERS)


def _json(body: dict[str, Any], status: int, headers: Mapping[str, str] | None) -> Response:
    """The core's bytes as they are, so every integration sends the same body."""
    return Response(json_bytes(body), status, headers, media_type="application/json")


async def rate_limit_exceeded_handler(request: Request, exc: Exception) -> Response:
    """Registered by ``install`` for the limiter's 429 and 503."""
    if not isinstance(exc, _Answer):  # registered for these classes only
        raise exc
    return exc.response()


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


class FastAPIFacts:
    """How the core reads an ``HTTPConnection`` (``core.request_keys.RequestFacts``)."""

    __slots__ = ("conn", "running")

    def __init__(self, conn: HTTPConnection, running: _Running) -> None:
        self.conn = conn
        self.running = running

    def ip(self) -> str:
        conn = self.conn
        peer = conn.client.host if conn.client else None
        proxies = self.running.limits.settings.proxies
        # every line of the header, in order: a proxy may add its own line
        forwarded = conn.headers.getlist(proxies.header_name) if proxies.reads_header else None
        return proxies.client(peer, forwarded)

    def user(self) -> Any:
        return self.running.owner.user(self.conn)

    def header(self, name: str) -> str | None:
        return self.conn.headers.get(name)

    def query(self, name: str) -> str | None:
        return self.conn.query_params.get(name)

    def call(self, func: Callable[..., Any]) -> Any:
        return func(self.conn)


def _default_user(conn: HTTPConnection) -> Any:
    """Starlette's ``AuthenticationMiddleware`` puts the user in the scope."""
    return conn.scope.get("user")


@dataclass(slots=True)
class _Running:
    """What an app needs per request, from ``install`` (or its lifespan) on."""

    owner: RateLimiter
    limits: AsyncLimits
    key: KeyRule  # the app's identity, for limits that name no key
    checked: bool = False  # the app's declared limits are known to be valid
    listener: Listener | None = None  # the app's on_breach, subscribed to the event hook

    async def hit(self, conn: HTTPConnection, limit: Limit) -> Charge[Any] | None:
        """The decision (None: exempt or no key); ``RateLimitUnavailable`` when the
        store fails under ``raise``."""
        try:
            return await acheck(bind(self.limits, limit, self.key), FastAPIFacts(conn, self))
        except StoreError as exc:
            raise RateLimitUnavailable() from exc

    def headers(self, decision: Decision, policy: str) -> dict[str, str]:
        return self.limits.headers(decision, policy)


def _running(app: Any) -> _Running:
    running = getattr(app.state, "ratelimit", None)
    if not isinstance(running, _Running):
        raise RuntimeError(
            "no rate limiter on this app: call limiter.install(app) after creating it"
        )
    if not running.checked:  # no lifespan checked the app: check it before the first answer
        running.owner.check_app(app)
        running.checked = True
    return running


class RateLimiter:
    """Settings, parsed at construction; per-app state lives in ``app.state`` while running."""

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        identity: Identity | None = None,
        on_breach: Listener | None = None,
        user: Callable[[HTTPConnection], Any] | None = None,
        **overrides: Any,
    ) -> None:
        """``on_breach(event)`` is called for each request the app refuses (or, in shadow
        mode, would refuse) while the lifespan is open; it runs in the event loop."""
        self.on_breach = on_breach
        self.user = user or _default_user
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
        """Give the app its store and limiters, render the limiter's 429 and 503 with the
        core's JSON body (``{"detail", "retry_after"}``), and list them among the
        responses of every limited route when the OpenAPI schema is built (routes
        declared after ``install`` included)."""
        self._attach(app)
        app.add_middleware(SettleRefunds)
        app.add_exception_handler(RateLimitExceeded, rate_limit_exceeded_handler)
        app.add_exception_handler(RateLimitUnavailable, rate_limit_exceeded_handler)
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

    def _attach(self, app: FastAPI) -> _Running:
        running = getattr(app.state, "ratelimit", None)
        if not isinstance(running, _Running) or running.owner is not self:
            store = make_lazy_async_store(self.options, coalesce=self.settings.coalesce)
            warn_if_split(self.options.is_memory, f"{WHERE}['STORAGE_URL'] = 'memory://'")
            limits = async_limits(self.settings, store)
            running = _Running(self, limits, own_key(self.identity))
            if self.on_breach is not None:
                running.listener = hub.subscribe(
                    scoped(self.on_breach, running.limits.limiters.values, BREACHES)
                )
            app.state.ratelimit = running
        return running

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Check the app's limits at start-up; close the Redis pool when the app stops."""
        self.check_app(app)
        running = self._attach(app)
        running.checked = True
        try:
            yield
        finally:
            if running.listener is not None:
                hub.unsubscribe(running.listener)
                running.listener = None
            await close_async_store(running.limits.store)

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


def _limits_itself(scope: Scope) -> bool:
    """Whether the route this request reaches has a ``RateLimit`` dependency."""
    for route in getattr(scope["app"], "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return isinstance(route, APIRoute) and any(
                True for _ in _dependencies(route.dependant)
            )
    return False


def _dependencies(dependant: Dependant) -> Iterator[RateLimit]:
    for sub in dependant.dependencies:
        if isinstance(sub.call, RateLimit):
            yield sub.call
        yield from _dependencies(sub)


class RateLimit:
    """``Depends(RateLimit("upload", cost=3))``: 429 when denied, headers either way.

    ``key``, ``exempt_when``, ``deduct_when`` and ``charge_on_status`` override the
    policy's; they are checked here, when the dependency is made."""

    def __init__(
        self, policy: str = "default", cost: float | None = None, **rules: Unpack[Rules]
    ) -> None:
        self.limit = Limit.of(check_policy_name(policy), cost, **rules)
        self.policy, self.cost = policy, cost

    async def __call__(self, request: Request) -> Decision | None:
        """The decision, or None when the request is exempt or has no key."""
        running = _running(request.app)
        charge = await running.hit(request, self.limit)
        if charge is None:
            return None
        if not charge.decision.allowed:
            raise RateLimitExceeded(charge.decision, running.headers(charge.decision, self.policy))
        request.scope.setdefault(_CHARGES, []).append(charge)  # headers, refund: SettleRefunds
        return charge.decision


def _outcome(status: int, headers: list[tuple[bytes, bytes]]) -> Response:
    """What ``deduct_when`` receives: the response's status and headers (no body)."""
    response = Response(status_code=status)
    response.raw_headers = headers
    return response


class _Watched:
    """``send``, adding the rate-limit headers ``extra()`` gives to the response's start
    and noting its status and headers for the refunds."""

    def __init__(self, send: Send, extra: Callable[[], Mapping[str, str]]) -> None:
        self.send = send
        self.extra = extra
        self.status = 500  # nothing sent: the app raised
        self.headers: list[tuple[bytes, bytes]] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            added = _raw(self.extra())
            self.status, self.headers = message["status"], [*message.get("headers", ()), *added]
            if added:
                message = {**message, "headers": self.headers}
        await self.send(message)

    async def settle(self, charges: Iterable[Charge[Any]]) -> None:
        for charge in charges:
            await asettle(charge, self.status, _outcome(self.status, self.headers))


class SettleRefunds:
    """Added by ``install``: the ``RateLimit`` dependencies' headers go on the response
    (whatever the endpoint returns), and after it their tokens go back when the outcome
    does not count (an exception counts as a 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = _Watched(send, lambda: _dependency_headers(scope))
        try:
            await self.app(scope, receive, watched)
        finally:
            await watched.settle(scope.get(_CHARGES, ()))


def _dependency_headers(scope: Scope) -> Mapping[str, str]:
    """The headers of the decision closest to denying, among the route's dependencies."""
    charges: list[Charge[Any]] = scope.get(_CHARGES, [])
    if not charges:
        return {}
    chosen = binding([charge.decision for charge in charges])
    found = next(charge for charge in charges if charge.decision is chosen)
    return _running(scope["app"]).headers(found.decision, found.policy)


class RateLimitMiddleware:
    """A global policy for every HTTP request, as a pure ASGI middleware.

    Non-HTTP scopes (lifespan, websocket), ``exempt_paths`` and CORS preflights pass
    straight through; a denial is answered here; allowed responses get the headers added
    to their start message, and their tokens back when the outcome does not count (a
    405, ``deduct_when``, ``charge_on_status``). It never reads the request body.
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: str = "default",
        cost: float | None = None,
        exempt_paths: Iterable[str] = (),
        **rules: Unpack[Rules],
    ) -> None:
        self.app = app
        self.policy = check_policy_name(policy)
        self.limit = Limit.of(policy, cost, **rules)
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._free(scope):
            await self.app(scope, receive, send)
            return
        running = _running(scope["app"])
        try:
            charge = await running.hit(HTTPConnection(scope), self.limit)
        except RateLimitUnavailable as unavailable:  # outside FastAPI's handlers: answer here
            await unavailable.response()(scope, receive, send)
            return
        if charge is None:
            await self.app(scope, receive, send)
            return
        headers = running.headers(charge.decision, self.policy)
        if not charge.decision.allowed:
            await _json(denial_body(charge.decision), 429, headers)(scope, receive, send)
            return
        watched = _Watched(send, lambda: headers)
        try:
            await self.app(scope, receive, watched)
        finally:
            await watched.settle([charge])

    def _free(self, scope: Scope) -> bool:
        """An exempt path, a CORS preflight, or a route limited by a ``RateLimit``
        dependency of its own (charged once, by that one, as Django's global limit
        leaves ``@ratelimit`` views to their decorator)."""
        if scope["path"] in self.exempt_paths:
            return True
        asked = Headers(scope=scope).get("access-control-request-method")
        return is_preflight(scope["method"], asked) or _limits_itself(scope)


def metrics_route(app: FastAPI, path: str = "/metrics") -> None:
    """Serve the Prometheus metrics at ``path``; with ``RateLimitMiddleware``, add the
    path to its ``exempt_paths``."""
    from ratelimit_app.core.metrics import render_metrics

    async def ratelimit_metrics(request: Request) -> Response:
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)

    app.add_route(path, ratelimit_metrics, include_in_schema=False)


def _raw(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """Headers as ASGI sends them: lower-case latin-1 names and values."""
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in headers.items()
    ]
