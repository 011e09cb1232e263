"""The demos' environment switches, and that a bad one stops them at start-up."""

from __future__ import annotations

import httpx
import pytest

from project import fastapi_app, flask_app
from project.demo_config import DEFAULT_REDIS_URL, demo_settings, django_redis_url
from ratelimit_app.core import ConfigError


def test_memory_unless_redis_is_asked_for() -> None:
    assert demo_settings({})["STORAGE_URL"] == "memory://"
    assert demo_settings({}, use_redis=True)["STORAGE_URL"] == DEFAULT_REDIS_URL
    given = {"REDIS_URL": "redis://10.0.0.9:6380/1"}
    assert demo_settings(given, use_redis=True)["STORAGE_URL"] == "redis://10.0.0.9:6380/1"


def test_demo_policies_and_their_overrides() -> None:
    policies = demo_settings({})["POLICIES"]
    assert policies["default"] == {"capacity": 5, "refill_rate": 1.0}
    assert policies["upload"] == {"capacity": 5, "refill_rate": 1.0, "cost": 3}
    env = {
        "RATELIMIT_CAPACITY": "50",
        "RATELIMIT_REFILL_RATE": "1e-6",
        "RATELIMIT_KEY_PREFIX": "x",
    }
    settings = demo_settings(env)
    assert settings["POLICIES"]["upload"] == {"capacity": 50, "refill_rate": 1e-6, "cost": 3}
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


async def test_fastapi_demo_limits_ping_and_upload() -> None:
    app = fastapi_app.create_app(demo_settings({"RATELIMIT_REFILL_RATE": "0.001"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            codes = [(await client.get("/api/ping")).status_code for _ in range(6)]
            uploads = [(await client.post("/api/upload")).status_code for _ in range(2)]
    assert codes == [200] * 5 + [429]
    assert uploads == [200, 429]
