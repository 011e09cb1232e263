"""``RateLimiter``: the settings, parsed when it is built, and what it gives an app
(``install``, ``lifespan``, the start-up check of the app's declared limits); and
``metrics_route``."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection

from ratelimit_app.core import ConfigError, parse_settings
from ratelimit_app.core.events import BREACHES, Listener, hub, scoped
from ratelimit_app.core.limiter import denial_log
from ratelimit_app.core.limits import async_limits
from ratelimit_app.core.request_keys import own_key
from ratelimit_app.core.stores.from_url import (
    STORAGE_KEYS,
    close_async_store,
    make_lazy_async_store,
    parse_storage_options,
)
from ratelimit_app.core.workers import warn_if_split

from .answers import (
    RateLimitExceeded,
    RateLimitUnavailable,
    documented,
    rate_limit_exceeded_handler,
)
from .dependency import rate_limits
from .middleware import RateLimitMiddleware, SettleRefunds
from .running import Running, default_user

__all__ = ["WHERE", "Identity", "RateLimiter", "metrics_route"]

WHERE = "RateLimiter settings"
Identity = Callable[[HTTPConnection], str | Awaitable[str]]


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
        self.user = user or default_user
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
        answers = documented(self.settings)
        exempt = [set(arguments["exempt_paths"]) for arguments in _middleware_arguments(app)]
        for route in app.routes:
            if not isinstance(route, APIRoute):
                continue
            global_limit = any(route.path not in paths for paths in exempt)
            if global_limit or any(True for _ in rate_limits(route.dependant)):
                for status, answer in answers.items():
                    route.responses.setdefault(status, answer)

    def _attach(self, app: FastAPI) -> Running:
        running = getattr(app.state, "ratelimit", None)
        if not isinstance(running, Running) or running.owner is not self:
            store = make_lazy_async_store(self.options, coalesce=self.settings.coalesce)
            warn_if_split(self.options.is_memory, f"{WHERE}['STORAGE_URL'] = 'memory://'")
            limits = async_limits(self.settings, store)
            running = Running(self, limits, own_key(self.identity))
            if self.on_breach is not None:
                running.listener = hub.subscribe(
                    scoped(self.on_breach, running.limits.limiters.values, BREACHES)
                )
            app.state.ratelimit = running
        return running

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Check the app's limits at start-up; close the Redis pool and log the last
        denial counts when the app stops."""
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
            denial_log.flush()  # uvicorn's workers skip atexit: count the last denials now

    def check_app(self, app: FastAPI) -> None:
        """Every policy and cost named by the app's dependencies and middleware must exist,
        and ``RateLimit`` dependencies need what ``install`` adds (without it they would
        limit, but silently send no headers and never refund)."""
        _check_installed(app)
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


def _check_installed(app: FastAPI) -> None:
    factories: list[Any] = [entry.cls for entry in app.user_middleware]
    if SettleRefunds in factories:
        return
    for route in app.routes:
        if isinstance(route, APIRoute) and any(True for _ in rate_limits(route.dependant)):
            raise ConfigError(
                f"RateLimit on {route.path}: the app has no rate limiter installed; call "
                "limiter.install(app) once after creating the app"
            )


def _declared_limits(app: FastAPI) -> Iterator[tuple[str, str, float | None]]:
    for arguments in _middleware_arguments(app):
        yield "RateLimitMiddleware", arguments["policy"], arguments["cost"]
    for route in app.routes:
        if isinstance(route, APIRoute):
            for limit in rate_limits(route.dependant):
                yield f"RateLimit on {route.path}", limit.policy, limit.cost


def metrics_route(app: FastAPI, path: str = "/metrics") -> None:
    """Serve the Prometheus metrics at ``path``; with ``RateLimitMiddleware``, add the
    path to its ``exempt_paths``."""
    from ratelimit_app.core.metrics import render_metrics

    async def ratelimit_metrics(request: Request) -> Response:
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)

    app.add_route(path, ratelimit_metrics, include_in_schema=False)
