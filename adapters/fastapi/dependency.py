"""``Depends(RateLimit(...))``: a limit on one route, and how the app finds its routes'
limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Unpack
from weakref import WeakKeyDictionary

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from ratelimit_app.core import Decision
from ratelimit_app.core.config import check_policy_name
from ratelimit_app.core.request_limits import Limit, Rules

from .answers import RateLimitExceeded
from .running import running_on

__all__ = ["CHARGES", "RateLimit", "limits_itself", "rate_limits"]

CHARGES = "ratelimit_app.charges"  # ASGI scope key: the dependencies' charges to settle


# Per app: its number of routes when last looked at, and whether any has a RateLimit.
_LIMITED: WeakKeyDictionary[Any, tuple[int, bool]] = WeakKeyDictionary()


def limits_itself(scope: Scope) -> bool:
    """Whether the route this request reaches has a ``RateLimit`` dependency. An app
    none of whose routes has one (a middleware-only app) is answered without matching
    the request against every route."""
    routes = getattr(scope["app"], "routes", ())
    count, any_limited = _LIMITED.get(scope["app"], (-1, True))
    if count != len(routes):
        any_limited = any(
            isinstance(route, APIRoute) and any(True for _ in rate_limits(route.dependant))
            for route in routes
        )
        _LIMITED[scope["app"]] = (len(routes), any_limited)
    if not any_limited:
        return False
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return isinstance(route, APIRoute) and any(True for _ in rate_limits(route.dependant))
    return False


def rate_limits(dependant: Dependant) -> Iterator[RateLimit]:
    """The ``RateLimit`` dependencies of a route, nested ones included."""
    for sub in dependant.dependencies:
        if isinstance(sub.call, RateLimit):
            yield sub.call
        yield from rate_limits(sub)


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
        running = running_on(request.app)
        charge = await running.hit(request, self.limit)
        if charge is None:
            return None
        if not charge.decision.allowed:
            raise RateLimitExceeded(charge.decision, running.headers(charge.decision, self.policy))
        request.scope.setdefault(CHARGES, []).append(charge)  # headers, refund: SettleRefunds
        return charge.decision
