"""The demos' environment switches, and that a bad one stops them at start-up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from project import fastapi_app, flask_app
from project.demo_config import DEFAULT_REDIS_URL, demo_settings, django_redis_url
from ratelimit_app.core import ConfigError

Call = Callable[[str, str], int]


def test_memory_unless_redis_is_asked_for() -> None:
    assert demo_settings({})["STORAGE_URL"] == "memory://"
    assert demo_settings({}, use_redis=True)["STORAGE_URL"] == DEFAULT_REDIS_URL
    given = {"REDIS_URL": "redis://10.0.0.9:6380/1"}
    assert demo_settings(given, use_redis=True)["STORAGE_URL"] == "redis://10.0.0.9:6380/1"


def test_one_policy_and_its_overrides() -> None:
    assert demo_settings({})["POLICIES"] == {"default": {"capacity": 5, "refill_rate": 1.0}}
    env = {
        "RATELIMIT_CAPACITY": "50",
        "RATELIMIT_REFILL_RATE": "1e-6",
        "RATELIMIT_KEY_PREFIX": "x",
    }
    settings = demo_settings(env)
    assert settings["POLICIES"] == {"default": {"capacity": 50, "refill_rate": 1e-6}}
    assert settings["KEY_PREFIX"] == "x"


@pytest.mark.parametrize("url", ["foo://bar", "memory://", "redis://", "localhost:6379"])
def test_the_django_demo_takes_only_a_redis_url(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^environment variable REDIS_URL: must be 'redis"):
        django_redis_url({"REDIS_URL": url})
    assert django_redis_url({}) == ""
    assert django_redis_url({"REDIS_URL": "unix:///run/redis.sock"}) == "unix:///run/redis.sock"


def test_a_non_number_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="RATELIMIT_CAPACITY must be a number, got 'lots'"):
        demo_settings({"RATELIMIT_CAPACITY": "lots"})
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_COUNT must be a whole number"):
        demo_settings({"RATELIMIT_TRUSTED_PROXY_COUNT": "1.5"})
    assert demo_settings({"RATELIMIT_TRUSTED_PROXY_COUNT": "1"})["TRUSTED_PROXY_COUNT"] == 1


@pytest.mark.parametrize(
    ("env", "named"),
    [({"RATELIMIT_CAPACITY": "2"}, "cost 3 exceeds capacity"), ({"REDIS_URL": "nope"}, "URL")],
)
async def test_a_bad_environment_fails_before_any_request(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        flask_app.create_app(demo_settings(env))
    with pytest.raises(ConfigError, match=named):
        app = fastapi_app.create_app(demo_settings(env))
        async with app.router.lifespan_context(app):
            pass  # pragma: no cover - start-up must fail


def _flask_call(app: Any) -> Call:
    client = app.test_client()
    return lambda method, path: client.open(path, method=method).status_code


def _fastapi_call(app: Any) -> Call:
    client = TestClient(app)  # no lifespan: the demo works without one
    return lambda method, path: client.request(method, path).status_code


@pytest.mark.parametrize(
    ("make", "call"),
    [(flask_app.create_app, _flask_call), (fastapi_app.create_app, _fastapi_call)],
)
def test_ping_and_upload_share_one_bucket(
    make: Callable[..., Any], call: Callable[..., Call]
) -> None:
    """The seed's two sequences, in process (tests/project/test_demo_http.py runs them
    over HTTP, from two client addresses)."""
    request = call(make(demo_settings({"RATELIMIT_REFILL_RATE": "0.001"})))
    assert [request("GET", "/api/ping") for _ in range(5)] == [200] * 5
    assert request("POST", "/api/upload") == 429
    other = call(make(demo_settings({"RATELIMIT_REFILL_RATE": "0.001"})))  # a fresh app
    assert other("POST", "/api/upload") == 200
    assert [other("GET", "/api/ping") for _ in range(3)] == [200, 200, 429]
    assert [other("GET", "/healthz") for _ in range(8)] == [200] * 8
