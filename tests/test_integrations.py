"""Every integration answers alike: DRF, plain Django (sync and async), Flask, and FastAPI
(dependency and middleware).

A denial is one 429 with the same JSON bytes (``{"detail", "retry_after"}``, compact
separators) and exactly one log line; a store that is down under ``ON_STORE_ERROR =
"raise"`` is a 503 with ``Retry-After`` and the same body shape, never a 500. Written
once, run on each integration.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from flask import Flask, jsonify

from ratelimit_app.adapters import fastapi as fastapi_adapter
from ratelimit_app.adapters import flask as flask_adapter
from ratelimit_app.core.headers import json_bytes, unavailable_body
from ratelimit_app.testing import free_port

Answer = tuple[int, dict[str, str], bytes]
Call = Callable[[], Answer]
# one request empties a bucket: a ping takes 1, tests/views.py's async upload takes 3
POLICIES = {
    "default": {"capacity": 1, "refill_rate": 0.001},
    "upload": {"capacity": 3, "refill_rate": 0.001},
}
INTEGRATIONS = ["drf", "django-sync", "django-async", "flask", "fastapi", "fastapi-middleware"]


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _down_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


def _django(request: pytest.FixtureRequest, name: str, store: str, extra: dict[str, Any]) -> Call:
    settings = request.getfixturevalue("settings")
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "down": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": _down_url()},
    }
    key_prefix = request.getfixturevalue("key_prefix")
    settings.RATELIMIT = {"CACHE": store, "KEY_PREFIX": key_prefix, "POLICIES": POLICIES, **extra}
    path = {"drf": "/api/ping", "django-sync": "/plain/ping", "django-async": "/plain/upload"}
    client, method = Client(), "post" if name == "django-async" else "get"

    def call() -> Answer:
        response = getattr(client, method)(path[name])
        return response.status_code, _lower(response.headers), response.content

    return call


def _flask(settings: dict[str, Any]) -> Call:
    app = Flask(__name__)
    app.config["RATELIMIT"] = settings
    limiter = flask_adapter.RateLimiter(app)
    app.add_url_rule("/ping", "ping", limiter.limit("default")(lambda: jsonify(pong=True)))
    client = app.test_client()

    def call() -> Answer:
        response = client.get("/ping")
        return response.status_code, _lower(response.headers), response.data

    return call


def _fastapi(settings: dict[str, Any], middleware: bool) -> Call:
    """No lifespan runs: ``TestClient`` outside ``with`` (each request on a new loop)."""
    limiter = fastapi_adapter.RateLimiter(settings)
    app = FastAPI()
    limiter.install(app)
    if middleware:
        app.add_middleware(fastapi_adapter.RateLimitMiddleware)
        app.add_api_route("/ping", lambda: {"pong": True})
    else:
        limit = Depends(fastapi_adapter.RateLimit("default"))
        app.add_api_route("/ping", lambda: {"pong": True}, dependencies=[limit])
    client = TestClient(app, raise_server_exceptions=False)

    def call() -> Answer:
        response = client.get("/ping")
        return response.status_code, _lower(response.headers), response.content

    return call


@pytest.fixture(params=INTEGRATIONS)
def integration(request: pytest.FixtureRequest) -> Callable[..., Call]:
    """``integration(store="memory"|"down", **settings)``: one call to a limited route."""
    name = request.param

    def make(store: str = "memory", **extra: Any) -> Call:
        if name in ("drf", "django-sync", "django-async"):
            return _django(request, name, "default" if store == "memory" else "down", extra)
        url = "memory://" if store == "memory" else _down_url()
        key_prefix = request.getfixturevalue("key_prefix")
        settings = {"STORAGE_URL": url, "KEY_PREFIX": key_prefix, "POLICIES": POLICIES, **extra}
        if name == "flask":
            return _flask(settings)
        return _fastapi(settings, middleware=name == "fastapi-middleware")

    return make


def _compact_json(body: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(body)
    assert list(parsed) == ["detail", "retry_after"]
    assert body == json_bytes(parsed), "the bytes differ from the one format"
    return parsed


@pytest.mark.django_db
def test_one_denial_is_one_429_one_body_and_one_log_line(
    integration: Callable[..., Call], caplog: pytest.LogCaptureFixture
) -> None:
    call = integration()
    assert call()[0] == 200
    caplog.clear()
    with caplog.at_level(logging.INFO):
        status, headers, body = call()
    assert status == 429
    parsed = _compact_json(body)
    assert parsed["detail"].startswith("Request was throttled.")
    assert headers["retry-after"] == str(math.ceil(parsed["retry_after"]))
    assert headers["content-type"].startswith("application/json")
    # every server-side record (the test client's own request log is not the server's)
    lines = [(r.name, r.getMessage()) for r in caplog.records if not r.name.startswith("httpx")]
    assert [line for line in lines if "rate limited" in line[1]] == [lines[0]], lines
    assert len(lines) == 1, f"one denial, one log line: {lines}"


@pytest.mark.django_db
@pytest.mark.parametrize(("mode", "status"), [("raise", 503), ("allow", 200), ("deny", 429)])
def test_a_store_that_is_down_is_never_a_500(
    integration: Callable[..., Call], mode: str, status: int
) -> None:
    call = integration("down", ON_STORE_ERROR=mode)
    for _ in range(2):
        got, headers, body = call()
        assert got == status
        assert (status == 200) == ("retry-after" not in headers)
    if status == 503:
        assert headers["retry-after"] == "1"
        assert _compact_json(body) == unavailable_body()
