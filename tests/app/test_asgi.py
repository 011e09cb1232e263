"""``ratelimit_app.asgi``: Django's ASGI handler answering the lifespan protocol, so the
server's shutdown logs the denial counts that ``atexit`` would (uvicorn never runs it;
``tests/project/test_demo_django.py`` proves that part under a real uvicorn)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from ratelimit_app.asgi import get_asgi_application, with_lifespan
from ratelimit_app.core.limiter import denial_log


def _lifespan(app: Any) -> list[dict[str, Any]]:
    """Run one startup and shutdown through ``app``; what it sent back."""
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    return sent


def test_shutdown_logs_the_open_denial_windows(caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(4):
        denial_log.denied("default", "feedface0123", "denied", 1, 0.5)
    with caplog.at_level(logging.INFO, logger="ratelimit_app"):
        sent = _lifespan(get_asgi_application())
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert "identity=feedface0123 repeated=3" in caplog.text


def test_other_scopes_reach_the_wrapped_app() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def nothing() -> Any:
        raise AssertionError("not called")

    wrapped = with_lifespan(app)
    for kind in ("http", "websocket"):
        asyncio.run(wrapped({"type": kind}, nothing, nothing))
    assert seen == ["http", "websocket"]
