"""Django's signals on the event hook: one event per decision on every Django path
(DRF throttle, sync and async ``@ratelimit``), refusals as ``rate_limited``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import AsyncClient, Client

from ratelimit_app.core.events import Event, hub
from ratelimit_app.signals import rate_limited, store_failed

pytestmark = pytest.mark.django_db


@pytest.fixture
def policies(slow_policies: Any) -> Any:  # from tests/app/conftest.py
    return slow_policies


@pytest.fixture
def heard() -> Iterator[tuple[list[Event], list[tuple[Any, Event]]]]:
    events: list[Event] = []
    refused: list[tuple[Any, Event]] = []

    def receiver(sender: Any, event: Event, **kwargs: Any) -> None:
        refused.append((sender, event))

    hub.subscribe(events.append)
    rate_limited.connect(receiver)
    yield events, refused
    rate_limited.disconnect(receiver)
    hub.unsubscribe(events.append)
    assert hub.listeners == ()  # the last receiver gone, the signal left the hook


@pytest.mark.parametrize("backend", ["locmem", "django-redis"])
@pytest.mark.parametrize("path", ["/api/ping", "/plain/ping"])
def test_sync_paths_fire_once_per_decision(ratelimit, heard, backend: str, path: str) -> None:
    ratelimit(CACHE=backend)
    events, refused = heard
    codes = [Client().get(path).status_code for _ in range(8)]
    assert codes == [200] * 5 + [429] * 3
    assert [e.outcome for e in events][:5] == ["allowed"] * 5 and len(events) == 8
    assert [sender for sender, _ in refused] == ["default"] * 3
    assert all(event.outcome in ("denied", "shed") for _, event in refused)


async def test_async_view_fires_once_per_decision(ratelimit, heard) -> None:
    events, refused = heard
    client = AsyncClient()
    codes = [(await client.post("/plain/upload")).status_code for _ in range(3)]
    assert codes == [200, 429, 429]
    assert [e.outcome for e in events] == ["allowed", "denied", "shed"]
    assert [(s, e.cost) for s, e in refused] == [("upload", 3.0)] * 2


def test_shadow_mode_passes_and_signals_what_it_would_refuse(ratelimit, heard) -> None:
    ratelimit(CACHE="django-redis", MODE="shadow")
    _, refused = heard
    answers = [Client().get("/api/ping") for _ in range(8)]
    assert [a.status_code for a in answers] == [200] * 8
    assert [a["X-RateLimit-Remaining"] for a in answers] == [
        "4",
        "3",
        "2",
        "1",
        "0",
        "0",
        "0",
        "0",
    ]
    assert [e.outcome for _, e in refused] == ["shadow_denied"] * 3


def test_store_failed_fires_per_failed_call(ratelimit, settings) -> None:
    seen: list[str] = []

    def receiver(sender: Any, event: Event, **kwargs: Any) -> None:
        seen.append(f"{sender}:{event.outcome}")

    settings.CACHES = {
        **settings.CACHES,
        "dead": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"},
    }
    ratelimit(CACHE="dead", ON_STORE_ERROR="allow")
    store_failed.connect(receiver)
    try:
        assert Client().get("/api/ping").status_code == 200
    finally:
        store_failed.disconnect(receiver)
    assert seen == ["default:store_error"]
