"""One contract, four integrations: the DRF throttle, ``@ratelimit``, Flask and FastAPI,
each on process memory and on a real Redis.

Every row is written once: the settings, what the limited view names (its key,
``exempt_when``, ``deduct_when``, ...), and a sequence of requests with the status and
``X-RateLimit-Remaining`` each must get (None: no rate-limit headers at all, as for an
exempt or unkeyed request; ``ANY``: not looked at). Each integration builds the same
small app: ``/limited`` (GET and POST; answers the status the request asks for in
``X-Status``), ``/only-post`` (POST only, same limit), ``/plain`` (no limit of its own)
and ``/exempt`` (left alone by the global limit). Users come from the framework's own
mechanism: Django sessions, Flask's and FastAPI's ``user=`` callable.
"""

from __future__ import annotations

import itertools
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from django.views.decorators.http import require_POST
from fastapi import Depends, FastAPI, Request
from fastapi import Response as FastAPIResponse
from fastapi.testclient import TestClient
from flask import Flask
from flask import Response as FlaskResponse
from flask import request as flask_request
from rest_framework.request import Request as DRFRequest
from rest_framework.response import Response as DRFResponse
from rest_framework.views import APIView

from ratelimit_app.adapters import fastapi as fastapi_adapter
from ratelimit_app.adapters import flask as flask_adapter
from ratelimit_app.decorators import ratelimit, ratelimit_exempt

ANY = object()
A, B = "203.0.113.1", "203.0.113.2"
P = {"capacity": 3, "refill_rate": 1e-6}
G = {"capacity": 2, "refill_rate": 1e-6}
INTEGRATIONS = ["drf", "django", "flask", "fastapi"]
RULES = "tests.contract_rules"
_urlconfs = itertools.count()


@dataclass(frozen=True)
class FakeUser:
    """What Flask and FastAPI apps hand the limiter as their user."""

    pk: int
    is_staff: bool = False
    is_superuser: bool = False
    is_authenticated: bool = True


USERS = {
    "alice": FakeUser(1),
    "staff": FakeUser(2, is_staff=True),
    "root": FakeUser(3, is_superuser=True),
}


@dataclass
class Case:
    """One row: settings (besides the store), the view's own arguments, the requests."""

    id: str
    settings: dict[str, Any]
    steps: list[tuple[dict[str, Any], Any, Any]]
    view: dict[str, Any] = field(default_factory=dict)
    global_policy: str | None = None


def policy(**extra: Any) -> dict[str, Any]:
    return {"POLICIES": {"p": {**P, **extra}}}


def repeat(n: int, request: dict[str, Any], answers: list[tuple[Any, Any]]) -> list[Any]:
    assert len(answers) == n
    return [(request, status, left) for status, left in answers]


COUNTDOWN = [(200, "2"), (200, "1"), (200, "0"), (429, "0")]
UNLIMITED = [(200, None)] * 4
PREFLIGHT = {"method": "OPTIONS", "headers": {"Origin": "https://x.example",
                                              "Access-Control-Request-Method": "GET"}}  # fmt: skip
OUTCOMES = [
    ({"status": 500}, 500, "2"), ({}, 200, "2"), ({}, 200, "1"),
    ({"status": 500}, 500, "0"), ({}, 200, "0"), ({}, 429, "0"),
]  # fmt: skip

CASES = [
    Case("key-ip", policy(key="ip"),
         [*repeat(4, {"ip": A}, COUNTDOWN), ({"ip": B}, 200, "2")]),
    Case("key-user", policy(), [({}, 200, None), *repeat(4, {"user": "alice"}, COUNTDOWN)],
         view={"key": "user"}),
    Case("key-user_or_ip", policy(key="user_or_ip"),
         [*repeat(4, {"user": "alice"}, COUNTDOWN), ({}, 200, "2")]),
    Case("key-header", policy(),
         [*repeat(4, {"headers": {"X-Api-Key": "k1"}}, COUNTDOWN),
          ({"headers": {"X-Api-Key": "k2"}}, 200, "2"), ({}, 200, None)],
         view={"key": "header:X-Api-Key"}),
    Case("key-query", policy(key="query:api_key"),
         [*repeat(4, {"query": {"api_key": "k1"}}, COUNTDOWN),
          ({"query": {"api_key": "k2"}}, 200, "2")]),
    Case("key-callable", policy(),
         [*repeat(4, {"headers": {"X-Client": "c1"}}, COUNTDOWN),
          ({"headers": {"X-Client": "c2"}}, 200, "2")],
         view={"key": f"{RULES}.client"}),
    Case("missing-header-falls-back", policy(),
         [({"headers": {"X-Api-Key": "k1"}}, 200, "2"), ({}, 200, "2"), ({}, 200, "1"),
          ({"headers": {"X-Api-Key": "k1"}}, 200, "1")],
         view={"key": ["header:X-Api-Key", "ip"]}),
    Case("missing-header-skips", policy(key=["header:X-Api-Key", "ip"], on_missing_key="skip"),
         [*repeat(4, {}, UNLIMITED), ({"headers": {"X-Api-Key": "k1"}}, 200, "2")]),
    Case("tiers-downgrade",
         {"POLICIES": {"p": {"tiers": {"free": {"capacity": 2, "refill_rate": 1e-6},
                                       "pro": {"capacity": 4, "refill_rate": 1e-6}},
                             "tier": f"{RULES}.plan", "default_tier": "free"}}},
         [*[({"headers": {"X-Plan": "pro"}}, 200, left) for left in ("3", "2", "1")],
          *[({"headers": {"X-Plan": "free"}}, status, left)
            for status, left in ((200, "1"), (200, "0"), (429, "0"))],
          ({}, 429, "0"), ({"headers": {"X-Plan": "gold"}}, 429, "0"),
          ({"headers": {"X-Plan": "pro"}}, 200, "0")]),
    Case("exempt-staff", {**policy(), "EXEMPT": {"staff": True}},
         [*repeat(4, {"user": "staff"}, UNLIMITED), *repeat(4, {"user": "alice"}, COUNTDOWN)]),
    Case("exempt-superusers", {**policy(), "EXEMPT": {"superusers": True}},
         [*repeat(4, {"user": "root"}, UNLIMITED), *repeat(4, {"user": "staff"}, COUNTDOWN)]),
    Case("exempt-ips", {**policy(), "EXEMPT": {"ips": ["10.0.0.0/8", "2001:db8::/32"]}},
         [*repeat(4, {"ip": "10.1.2.3"}, UNLIMITED), *repeat(4, {"ip": "2001:db8::5"}, UNLIMITED),
          *repeat(4, {"ip": A}, COUNTDOWN)]),
    Case("exempt-when", policy(),
         [*repeat(4, {"headers": {"X-Internal": "yes"}}, UNLIMITED), ({}, 200, "2")],
         view={"exempt_when": f"{RULES}.internal"}),
    Case("deduct-when", policy(), OUTCOMES, view={"deduct_when": f"{RULES}.not_server_error"}),
    Case("charge-on-status", policy(charge_on_status="not 5xx"), OUTCOMES),
    Case("global-exempt-once", {"POLICIES": {"p": P, "g": G}},
         [({}, 200, "2"), ({"path": "/plain"}, 200, "1"), ({"path": "/exempt"}, 200, None),
          ({"path": "/plain"}, 200, "0"), ({"path": "/plain"}, 429, "0"),
          ({"path": "/exempt"}, 200, None), ({}, 200, "1")],
         global_policy="g"),
    Case("405-and-preflight-free", policy(),
         [({"path": "/only-post"}, 405, ANY), (PREFLIGHT, ANY, ANY),
          ({"path": "/only-post", "method": "POST"}, 200, "2"), ({}, 200, "1")]),
]  # fmt: skip

Answer = tuple[int, Any]
Call = Callable[..., Answer]


def _remaining(headers: Any) -> str | None:
    return headers.get("X-RateLimit-Remaining")  # type: ignore[no-any-return]


# --- Django: DRF throttle and @ratelimit --------------------------------------------------


def _status(request: Any) -> int:
    return int(request.headers.get("X-Status", "200"))


def _django_answer(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=_status(request))


def _drf_views(view: dict[str, Any]) -> tuple[Any, Any]:
    attrs = {"throttle_scope": "p", **{f"throttle_{k}": v for k, v in view.items()}}

    def get(self: Any, request: DRFRequest) -> DRFResponse:
        return DRFResponse(status=_status(request))

    limited = type("Limited", (APIView,), {**attrs, "get": get, "post": get})
    only_post = type("OnlyPost", (APIView,), {**attrs, "post": get})
    return limited.as_view(), only_post.as_view()


def _urlconf(view: dict[str, Any], drf: bool) -> str:
    """A URLconf module made for this row."""
    if drf:
        limited, only_post = _drf_views(view)
    else:
        limited = ratelimit("p", **view)(_django_answer)
        only_post = ratelimit("p", **view)(require_POST(_django_answer))
    module = types.ModuleType(f"tests._contract_urls_{next(_urlconfs)}")
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("limited", limited), path("only-post", only_post),
        path("plain", _django_answer), path("exempt", ratelimit_exempt(_django_answer)),
    ]  # fmt: skip
    sys.modules[module.__name__] = module
    return module.__name__


def _django(request: pytest.FixtureRequest, store: str, case: Case, drf: bool) -> Call:
    settings = request.getfixturevalue("settings")
    if store == "redis":
        location = request.getfixturevalue("redis_url")
        settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache",
                                       "LOCATION": location}}  # fmt: skip
    else:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    raw = {"KEY_PREFIX": request.getfixturevalue("key_prefix"), **case.settings}
    if case.global_policy:
        raw["DEFAULT_POLICY"] = case.global_policy
    settings.RATELIMIT = raw
    settings.ROOT_URLCONF = _urlconf(case.view, drf)
    clients: dict[str | None, Client] = {None: Client()}
    users = get_user_model().objects

    def call(path: str = "/limited", method: str = "GET", ip: str = A, user: str | None = None,
             headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
             status: int = 200) -> Answer:  # fmt: skip
        if user not in clients:
            found = USERS[user]  # type: ignore[index]
            made = users.create_user(
                user, is_staff=found.is_staff, is_superuser=found.is_superuser
            )
            clients[user] = Client()
            clients[user].force_login(made)
        response = clients[user].generic(
            method, path, headers={**(headers or {}), "X-Status": str(status)},
            query_params=query, REMOTE_ADDR=ip,
        )  # fmt: skip
        return response.status_code, _remaining(response.headers)

    return call


# --- Flask -------------------------------------------------------------------------------


def _flask(settings: dict[str, Any], case: Case) -> Call:
    app = Flask(__name__)
    app.config["RATELIMIT"] = {**settings, **case.settings}
    if case.global_policy:
        app.config["RATELIMIT"]["DEFAULT_POLICY"] = case.global_policy
    limiter = flask_adapter.RateLimiter(
        app, user=lambda: USERS.get(flask_request.headers.get("X-Test-User", ""))
    )

    def answer() -> FlaskResponse:
        return FlaskResponse(status=_status(flask_request))

    for name, methods in (("limited", ["GET", "POST"]), ("only-post", ["POST"])):
        view = limiter.limit("p", **case.view)(lambda: answer())
        app.add_url_rule(f"/{name}", name, view, methods=methods)
    app.add_url_rule("/plain", "plain", lambda: answer())
    app.add_url_rule("/exempt", "exempt", limiter.exempt(lambda: answer()))
    client = app.test_client()

    def call(path: str = "/limited", method: str = "GET", ip: str = A, user: str | None = None,
             headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
             status: int = 200) -> Answer:  # fmt: skip
        sent = {**(headers or {}), "X-Status": str(status), "X-Test-User": user or ""}
        response = client.open(path, method=method, headers=sent, query_string=query,
                               environ_base={"REMOTE_ADDR": ip})  # fmt: skip
        return response.status_code, _remaining(response.headers)

    return call


# --- FastAPI ------------------------------------------------------------------------------


def _fastapi(settings: dict[str, Any], case: Case) -> Call:
    limiter = fastapi_adapter.RateLimiter(
        {**settings, **case.settings},
        user=lambda conn: USERS.get(conn.headers.get("x-test-user", "")),
    )
    app = FastAPI()
    limiter.install(app)
    if case.global_policy:
        app.add_middleware(
            fastapi_adapter.RateLimitMiddleware,
            policy=case.global_policy,
            exempt_paths=["/exempt"],
        )

    async def answer(request: Request) -> FastAPIResponse:
        return FastAPIResponse(status_code=_status(request))

    limit = [Depends(fastapi_adapter.RateLimit("p", **case.view))]
    app.add_api_route("/limited", answer, methods=["GET", "POST"], dependencies=limit)
    app.add_api_route("/only-post", answer, methods=["POST"], dependencies=limit)
    app.add_api_route("/plain", answer)
    app.add_api_route("/exempt", answer)
    clients: dict[str, TestClient] = {}

    def call(path: str = "/limited", method: str = "GET", ip: str = A, user: str | None = None,
             headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
             status: int = 200) -> Answer:  # fmt: skip
        client = clients.setdefault(ip, TestClient(app, client=(ip, 50000)))
        sent = {**(headers or {}), "X-Status": str(status), "X-Test-User": user or ""}
        response = client.request(method, path, headers=sent, params=query)
        return response.status_code, _remaining(response.headers)

    return call


def build(request: pytest.FixtureRequest, integration: str, store: str, case: Case) -> Call:
    if integration in ("drf", "django"):
        return _django(request, store, case, drf=integration == "drf")
    url = request.getfixturevalue("redis_url") if store == "redis" else "memory://"
    settings = {"STORAGE_URL": url, "KEY_PREFIX": request.getfixturevalue("key_prefix")}
    return _flask(settings, case) if integration == "flask" else _fastapi(settings, case)


@pytest.mark.django_db
@pytest.mark.parametrize("store", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
@pytest.mark.parametrize("integration", INTEGRATIONS)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_contract(
    request: pytest.FixtureRequest, integration: str, store: str, case: Case
) -> None:
    call = build(request, integration, store, case)
    for sent, status, left in case.steps:
        got = call(**sent)
        expected = (got[0] if status is ANY else status, got[1] if left is ANY else left)
        assert got == expected, (sent, got)
