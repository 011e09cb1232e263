"""The ASGI middlewares: ``RateLimitMiddleware`` (a global policy) and ``SettleRefunds``
(the ``RateLimit`` dependencies' headers and refunds), both adding headers to the
response's start message and settling charges once the outcome is known."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Unpack

from fastapi import Response
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ratelimit_app.core import denial_body
from ratelimit_app.core.bucket import binding
from ratelimit_app.core.config import check_policy_name
from ratelimit_app.core.exemptions import is_preflight
from ratelimit_app.core.request_limits import Charge, Limit, Rules, asettle

from .answers import RateLimitUnavailable, json_response
from .dependency import CHARGES, limits_itself
from .running import running_on

__all__ = ["RateLimitMiddleware", "SettleRefunds"]


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
            outcome = _outcome(self.status, self.headers) if charge.reads_response else None
            await asettle(charge, self.status, outcome)


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
            await watched.settle(scope.get(CHARGES, ()))


def _dependency_headers(scope: Scope) -> Mapping[str, str]:
    """The headers of the decision closest to denying, among the route's dependencies."""
    charges: list[Charge[Any]] = scope.get(CHARGES, [])
    if not charges:
        return {}
    found = charges[0]
    if len(charges) > 1:
        chosen = binding([charge.decision for charge in charges])
        found = next(charge for charge in charges if charge.decision is chosen)
    return running_on(scope["app"]).headers(found.decision, found.policy)


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
        running = running_on(scope["app"])
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
            await json_response(denial_body(charge.decision), 429, headers)(scope, receive, send)
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
        return is_preflight(scope["method"], asked) or limits_itself(scope)


def _raw(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """Headers as ASGI sends them: lower-case latin-1 names and values."""
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in headers.items()
    ]
