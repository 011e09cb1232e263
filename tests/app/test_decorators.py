"""``@ratelimit`` on plain Django views (sync and async) and ``RateLimitMiddleware``."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.http import HttpResponse
from django.test import AsyncClient, Client, RequestFactory

from ratelimit_app.core import ConfigError
from ratelimit_app.decorators import ratelimit as limit
from ratelimit_app.testing import free_port

MIDDLEWARE = "ratelimit_app.middleware.RateLimitMiddleware"


@pytest.mark.parametrize("backend", ["locmem", "django-redis"])
def test_sync_view_five_pass_then_429(client: Client, ratelimit: Any, backend: str) -> None:
    ratelimit(CACHE=backend)
    statuses = [client.get("/plain/ping").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    denied = client.get("/plain/ping")
    assert denied["Retry-After"] == "1"
    assert denied["RateLimit"] == '"default";r=0;t=1'
    assert set(denied.json()) == {"detail", "retry_after"}


@pytest.mark.parametrize("backend", ["locmem", "redis-cache"])
async def test_async_view_charges_three(
    async_client: AsyncClient, ratelimit: Any, backend: str
) -> None:
    ratelimit(CACHE=backend)
    first = await async_client.post("/plain/upload")
    assert first.status_code == 200
    assert (first["X-RateLimit-Remaining"], first["RateLimit"]) == ("2", '"upload";r=2;t=1')
    second = await async_client.post("/plain/upload")
    assert second.status_code == 429
    assert second["Retry-After"] == "1"
    assert 0 < second.json()["retry_after"] <= 1.0


def test_decorator_adds_headers_without_the_middleware(client, ratelimit, settings) -> None:
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE]
    assert client.get("/plain/ping")["X-RateLimit-Remaining"] == "4"
    assert "X-RateLimit-Remaining" not in client.get("/api/ping")  # DRF needs the middleware


def test_unlimited_views_get_no_headers(client: Client, ratelimit: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response and "RateLimit" not in response


def test_store_outage_with_raise_is_a_503(client, ratelimit, settings) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "down": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                 "LOCATION": f"redis://127.0.0.1:{free_port()}/0"},
    }  # fmt: skip
    ratelimit(CACHE="down", ON_STORE_ERROR="raise")
    response = client.get("/plain/ping")
    assert (response.status_code, response["Retry-After"]) == (503, "1")


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [(("bad name",), {}, "policy name"), (("x",), {"cost": -1}, "cost"),
     (("x",), {"cost": "3"}, "cost")],
)  # fmt: skip
def test_bad_decorator_arguments_fail_at_import(args, kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        limit(*args, **kwargs)


def test_unknown_policy_names_the_policy_at_request_time(ratelimit: Any) -> None:
    view = limit("missing")(lambda request: HttpResponse("ok"))
    with pytest.raises(ConfigError, match="unknown rate-limit policy 'missing'"):
        view(RequestFactory().get("/"))


def test_decorator_keeps_the_view_kind_and_marks_it() -> None:
    async def async_view(request: Any) -> HttpResponse:
        return HttpResponse()

    wrapped = limit("upload", cost=2)(async_view)
    assert iscoroutinefunction(wrapped)
    assert (wrapped.ratelimit_limit.policy, wrapped.ratelimit_limit.cost) == ("upload", 2)
    assert wrapped.__name__ == "async_view"


@pytest.mark.django_db(transaction=True)
async def test_async_view_charges_the_logged_in_user(
    async_client: AsyncClient, ratelimit: Any, django_user_model: Any
) -> None:
    from asgiref.sync import sync_to_async

    from ratelimit_app.conf import get_runtime

    user = await sync_to_async(django_user_model.objects.create_user)("async", password="pw")
    await async_client.aforce_login(user)
    assert (await async_client.post("/plain/upload")).status_code == 200
    limiter = get_runtime().limiter("upload")
    assert limiter.peek(f"user:{user.pk}").remaining == pytest.approx(2.0, abs=0.1)
    assert limiter.peek("ip:127.0.0.1").remaining == 5.0


@pytest.mark.parametrize("backend", ["locmem", "redis-cache"])
async def test_async_view_honours_a_composite_policy_on_the_sync_keys(
    async_client: AsyncClient, ratelimit: Any, backend: str
) -> None:
    """The async path must build its limiters as the sync path does: every bucket of a
    composite policy, under the same keys (once it used only the smallest bucket)."""
    from ratelimit_app.conf import get_runtime

    burst = {"capacity": 5, "refill_rate": 1000.0}  # the smallest, refilled at once
    slow = {"capacity": 9, "refill_rate": 1e-6}  # binds: 9 tokens = 3 uploads of cost 3
    ratelimit(CACHE=backend, POLICIES={"upload": {"buckets": [burst, slow]}})
    statuses = [(await async_client.post("/plain/upload")).status_code for _ in range(20)]
    assert statuses.count(200) == 3 and statuses.count(429) == 17
    sync = get_runtime().limiter("upload")
    assert sync.peek("ip:127.0.0.1").remaining == pytest.approx(0.0, abs=1e-6)
    assert not sync.allow_request("ip:127.0.0.1", 1).allowed
    stored = {key for key, _ in get_runtime().store.scan(sync.key_prefix + ":upload:")}
    assert stored == set(sync.keys_for("ip:127.0.0.1"))
