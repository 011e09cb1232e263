"""Django under an ASGI server, with the limiter's shutdown work done before the worker
exits.

uvicorn stops a worker by finishing its shutdown and then re-raising SIGTERM, so the
process dies of the signal and ``atexit`` hooks never run: the last window of repeated
denials (``repeated=N in the S s after the first``) would be lost. The lifespan protocol
is the moment an ASGI server gives an app to finish, and Django's own handler refuses
it; ``get_asgi_application`` answers it around Django's handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.core.asgi import get_asgi_application as django_asgi_application

from ratelimit_app.core.limiter import denial_log

__all__ = ["get_asgi_application", "with_lifespan"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def get_asgi_application() -> ASGIApp:
    """Django's ASGI application (``django.core.asgi.get_asgi_application``), answering
    the lifespan protocol: at shutdown, the denial log's open windows are logged."""
    return with_lifespan(django_asgi_application())


def with_lifespan(app: ASGIApp) -> ASGIApp:
    """``app`` for HTTP and websockets; the lifespan scope is answered here."""

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                denial_log.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return

    return application
