"""Use the installed wheel as a user does: ``python use_installed.py REDIS_URL PREFIX``.

Each step needs a file that only package data provides: the Lua script (a decision on
Redis), the admin templates (the bucket page), the adapters' module mapping (the
import paths the README gives). Prints one line per step; any failure raises.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import django
import httpx
import redis
from django.conf import settings
from fastapi import Depends, FastAPI
from flask import Flask
from ratelimit_app.adapters.fastapi import RateLimit
from ratelimit_app.adapters.fastapi import RateLimiter as FastAPILimiter
from ratelimit_app.adapters.flask import RateLimiter as FlaskLimiter

import ratelimit_app
from ratelimit_app.core import RateLimitConfig, RedisStore, TokenBucketRateLimiter

REDIS_URL, PREFIX = sys.argv[1], sys.argv[2]
POLICIES = {"default": {"capacity": 5, "refill_rate": 0.001}}


def installed() -> None:
    here = Path(ratelimit_app.__file__).resolve()
    assert "site-packages" in here.parts, here
    print("installed at", here.parent)


def redis_decision() -> None:
    store = RedisStore(redis.Redis.from_url(REDIS_URL))
    limiter = TokenBucketRateLimiter(RateLimitConfig(5, 0.001), store, key_prefix=PREFIX)
    decision = limiter.allow_request("wheel", cost=3)
    assert decision.allowed and round(decision.remaining) == 2, decision
    print("redis decision: remaining", round(decision.remaining))


def admin_page() -> None:
    settings.configure(
        DEBUG=False, SECRET_KEY="wheel-test", ROOT_URLCONF="user_urls", ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["django.contrib.admin", "django.contrib.auth",
                        "django.contrib.contenttypes", "django.contrib.sessions",
                        "django.contrib.messages", "ratelimit_app"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                    "django.contrib.auth.middleware.AuthenticationMiddleware",
                    "django.contrib.messages.middleware.MessageMiddleware"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates",
                    "APP_DIRS": True, "OPTIONS": {"context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages"]}}],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        RATELIMIT={"KEY_PREFIX": PREFIX, "POLICIES": POLICIES},
        STATIC_URL="static/", USE_TZ=True,
    )  # fmt: skip
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("admin", "a@b.c", "pw"))
    page = client.get("/admin/ratelimit_app/bucket/")
    assert page.status_code == 200, page.status_code
    assert b"<h2>Policies</h2>" in page.content
    print("admin page: rendered", len(page.content), "bytes")


def flask_request() -> None:
    app = Flask(__name__)
    app.config["RATELIMIT"] = {"KEY_PREFIX": PREFIX, "POLICIES": POLICIES}
    limiter = FlaskLimiter(app)
    app.add_url_rule("/", "index", limiter.limit("default", cost=3)(lambda: "ok"))
    response = app.test_client().get("/")
    assert response.headers["X-RateLimit-Remaining"] == "2", response.headers
    print("flask: remaining", response.headers["X-RateLimit-Remaining"])


async def _fastapi_request() -> httpx.Response:
    limiter = FastAPILimiter({"STORAGE_URL": REDIS_URL, "KEY_PREFIX": PREFIX,
                              "POLICIES": POLICIES})  # fmt: skip
    app = FastAPI(lifespan=limiter.lifespan)
    limiter.install(app)
    app.add_api_route("/", lambda: "ok", dependencies=[Depends(RateLimit("default", cost=3))])
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://wheel") as client:
            return await client.get("/")


def fastapi_request() -> None:
    response = asyncio.run(_fastapi_request())
    assert response.headers["X-RateLimit-Remaining"] == "2", response.headers
    print("fastapi on redis: remaining", response.headers["X-RateLimit-Remaining"])


for step in (installed, redis_decision, admin_page, flask_request, fastapi_request):
    step()
