"""What an app holds while it runs (``app.state.ratelimit``), and how the core reads a
request through it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from ratelimit_app.core import Decision, StoreError
from ratelimit_app.core.events import Listener
from ratelimit_app.core.limits import AsyncLimits
from ratelimit_app.core.request_keys import KeyRule
from ratelimit_app.core.request_limits import Charge, Limit, acheck, bind

from .answers import RateLimitUnavailable

if TYPE_CHECKING:
    from .limiter import RateLimiter

__all__ = ["FastAPIFacts", "Running", "default_user", "running_on"]


class FastAPIFacts:
    """How the core reads an ``HTTPConnection`` (``core.request_keys.RequestFacts``)."""

    __slots__ = ("conn", "running")

    def __init__(self, conn: HTTPConnection, running: Running) -> None:
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


def default_user(conn: HTTPConnection) -> Any:
    """Starlette's ``AuthenticationMiddleware`` puts the user in the scope."""
    return conn.scope.get("user")


@dataclass(slots=True)
class Running:
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


def running_on(app: Any) -> Running:
    """The app's state, checked against the policies at its first limited request when
    no lifespan did it at start-up."""
    running = getattr(app.state, "ratelimit", None)
    if not isinstance(running, Running):
        raise RuntimeError(
            "no rate limiter on this app: call limiter.install(app) after creating it"
        )
    if not running.checked:  # no lifespan checked the app: check it before the first answer
        running.owner.check_app(app)
        running.checked = True
    return running
