"""The Flask extension over memory and a real Redis: limits, headers, identity, config."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
import redis
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from hypothesis import event, given, settings
from ratelimit_app.adapters.flask import RateLimiter, metrics_route

from ratelimit_app.core import ConfigError
from ratelimit_app.core.events import Event, hub
from ratelimit_app.core.headers import json_bytes, unavailable_body
from ratelimit_app.testing import RedisServer
from tests.adapters.conftest import BAD_SETTINGS, COMPOSITE, POLICIES, SLOW, stored_tokens
from tests.hostile_settings import (
    PROPERTY_EXAMPLES,
    check_headers,
    settings_dicts,
    visits,
    with_hostile_examples,
)


def make_app(
    storage_url: str, key_prefix: str, on_breach: Any = None, **extra: Any
) -> tuple[Flask, RateLimiter]:
    app = Flask(__name__)
    app.config["RATELIMIT"] = {
        "STORAGE_URL": storage_url,
        "KEY_PREFIX": key_prefix,
        "POLICIES": POLICIES,
        **extra,
    }
    limiter = RateLimiter(on_breach=on_breach)

    @app.get("/ping")
    @limiter.limit("default")
    def ping() -> Any:
        return jsonify(pong=True)

    @app.post("/upload")
    @limiter.limit("upload", cost=3)
    def upload() -> Any:
        return jsonify(uploaded=True)

    @app.get("/free")
    @limiter.exempt
    def free() -> Any:
        return jsonify(free=True)

    @app.get("/plain")
    def plain() -> Any:
        return jsonify(plain=True)

    limiter.init_app(app)
    return app, limiter


@pytest.fixture
def client(storage_url: str, key_prefix: str) -> FlaskClient:
    return make_app(storage_url, key_prefix)[0].test_client()


def test_five_pings_pass_and_the_sixth_is_429(client: FlaskClient) -> None:
    remaining = [client.get("/ping").headers["X-RateLimit-Remaining"] for _ in range(5)]
    assert remaining == ["4", "3", "2", "1", "0"]
    denied = client.get("/ping")
    assert denied.status_code == 429
    body = denied.get_json()
    assert set(body) == {"detail", "retry_after"}
    assert body["retry_after"] == pytest.approx(1 / 0.001, rel=0.01)
    assert denied.headers["Retry-After"] == str(math.ceil(body["retry_after"]))
    assert "throttled" in body["detail"]


def test_headers_on_allowed_and_denied(client: FlaskClient) -> None:
    allowed = client.post("/upload")
    assert allowed.status_code == 200
    assert allowed.headers["X-RateLimit-Limit"] == "5"
    assert allowed.headers["X-RateLimit-Remaining"] == "2"
    assert allowed.headers["RateLimit-Policy"] == '"upload";q=5;w=5000'
    assert allowed.headers["RateLimit"].startswith('"upload";r=2;t=')
    assert "Retry-After" not in allowed.headers
    denied = client.post("/upload")  # 2 tokens left, cost 3
    assert denied.status_code == 429
    assert denied.headers["X-RateLimit-Remaining"] == "2"
    t = int(denied.headers["RateLimit"].split("t=")[1])
    assert t == int(denied.headers["Retry-After"]) == math.ceil(denied.get_json()["retry_after"])


def test_upload_costs_three_from_its_own_bucket(client: FlaskClient) -> None:
    assert client.post("/upload").status_code == 200
    assert client.post("/upload").status_code == 429
    assert [client.get("/ping").status_code for _ in range(6)] == [200] * 5 + [429]


def test_exempt_and_unlimited_views_are_untouched(client: FlaskClient) -> None:
    for _ in range(10):
        for path in ("/free", "/plain"):
            response = client.get(path)
            assert response.status_code == 200
            assert not any(
                name.lower().startswith(("x-ratelimit", "ratelimit"))
                for name in response.headers.keys()
            )


def test_default_policy_limits_unmarked_views_only(storage_url: str, key_prefix: str) -> None:
    client = make_app(storage_url, key_prefix, DEFAULT_POLICY="default")[0].test_client()
    assert [client.get("/plain").status_code for _ in range(6)] == [200] * 5 + [429]
    assert client.get("/ping").status_code == 429  # same policy, same bucket
    assert all(client.get("/free").status_code == 200 for _ in range(3))


def _forwarded(client: FlaskClient, n: int) -> list[int]:
    return [
        client.get("/ping", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
        for i in range(n)
    ]


def test_forwarded_for_is_ignored_by_default(client: FlaskClient) -> None:
    assert _forwarded(client, 6) == [200] * 5 + [429]


def test_forwarded_for_is_believed_through_a_trusted_proxy(
    storage_url: str, key_prefix: str
) -> None:
    client = make_app(storage_url, key_prefix, TRUSTED_PROXY_COUNT=1)[0].test_client()
    assert _forwarded(client, 8) == [200] * 8
    spoofed = [
        client.get("/ping", headers={"X-Forwarded-For": f"10.0.0.{i}, 198.51.100.7"}).status_code
        for i in range(6)
    ]
    assert spoofed == [200] * 5 + [429]  # the proxy saw 198.51.100.7: the left part is noise


def test_custom_identity_function(storage_url: str, key_prefix: str) -> None:
    app = Flask(__name__)
    app.config["RATELIMIT"] = {"STORAGE_URL": storage_url, "KEY_PREFIX": key_prefix,
                               "POLICIES": POLICIES, "DEFAULT_POLICY": "default"}  # fmt: skip
    RateLimiter(app, identity=lambda: request.headers.get("X-User", "anonymous"))
    app.add_url_rule("/me", "me", lambda: jsonify(me=True))
    client = app.test_client()
    assert [client.get("/me", headers={"X-User": "ann"}).status_code for _ in range(6)][-1] == 429
    assert client.get("/me", headers={"X-User": "bob"}).status_code == 200


def test_redis_holds_the_buckets(
    redis_url: str, redis_client: redis.Redis, key_prefix: str
) -> None:
    client = make_app(redis_url, key_prefix)[0].test_client()
    client.post("/upload")
    assert stored_tokens(redis_client, f"{key_prefix}:upload:127.0.0.1") == pytest.approx(
        2, abs=0.01
    )


def test_header_families_can_be_switched_off(storage_url: str, key_prefix: str) -> None:
    client = make_app(storage_url, key_prefix, LEGACY_HEADERS=False)[0].test_client()
    headers = client.get("/ping").headers
    assert "X-RateLimit-Limit" not in headers
    assert headers["RateLimit"].startswith('"default";r=4')


def test_constructor_overrides_win_over_app_config(key_prefix: str) -> None:
    app = Flask(__name__)
    app.config["RATELIMIT"] = {"STORAGE_URL": "ftp://wrong", "POLICIES": POLICIES}
    RateLimiter(app, STORAGE_URL="memory://", KEY_PREFIX=key_prefix)
    assert app.extensions["ratelimit"].limits.settings.key_prefix == key_prefix


@pytest.mark.parametrize(("bad", "named"), BAD_SETTINGS)
def test_bad_config_fails_at_init_app(bad: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as info:
        make_app("memory://", "rl", **bad)
    assert "app.config['RATELIMIT']" in str(info.value)


def test_unknown_default_policy_fails_at_init_app() -> None:
    with pytest.raises(ConfigError, match=r"DEFAULT_POLICY.*'nope'"):
        make_app("memory://", "rl", DEFAULT_POLICY="nope")


def test_bad_limit_declaration_fails_at_init_app_or_at_decoration() -> None:
    app = Flask(__name__)
    app.config["RATELIMIT"] = {"POLICIES": POLICIES}
    limiter = RateLimiter()
    limiter.limit("upload", cost=9)(lambda: "x")
    with pytest.raises(ConfigError, match="cost 9 exceeds capacity"):
        limiter.init_app(app)
    later = RateLimiter(app)
    with pytest.raises(ConfigError, match="unknown rate-limit policy 'nope'"):
        later.limit("nope")(lambda: "x")


@pytest.mark.parametrize(
    ("mode", "during"), [("fallback", 200), ("allow", 200), ("deny", 429), ("raise", 503)]
)
def test_redis_outage_never_500_and_recovers(
    own_redis: RedisServer, key_prefix: str, mode: str, during: int
) -> None:
    app, _ = make_app(
        own_redis.url, key_prefix, ON_STORE_ERROR=mode, RETRY_INTERVAL=0.05, SOCKET_TIMEOUT=0.5,
        POLICIES={**POLICIES, "default": {"capacity": 1000, "refill_rate": 0.001}},
    )  # fmt: skip
    client, raw = app.test_client(), own_redis.client()
    key = f"{key_prefix}:default:127.0.0.1"
    assert client.get("/ping").status_code == 200
    assert stored_tokens(raw, key) == pytest.approx(999, abs=0.01)
    own_redis.stop()
    assert [client.get("/ping").status_code for _ in range(20)] == [during] * 20
    if mode == "raise":
        unavailable = client.get("/ping")
        assert unavailable.headers["Retry-After"] == "1"
        assert unavailable.data == json_bytes(unavailable_body())
    own_redis.start()
    assert stored_tokens(raw, key) is None  # a fresh server: the key is gone
    deadline = time.monotonic() + 10
    while stored_tokens(raw, key) is None and time.monotonic() < deadline:
        assert client.get("/ping").status_code in {200, during}  # until the back-off ends
        time.sleep(0.02)
    assert stored_tokens(raw, key) is not None
    assert client.get("/ping").status_code == 200


def test_init_app_twice_on_one_app_is_refused() -> None:
    app, limiter = make_app("memory://", "rl")
    with pytest.raises(RuntimeError, match="already initialised"):
        limiter.init_app(app)


def test_one_extension_serves_two_apps_with_their_own_state(key_prefix: str) -> None:
    limiter = RateLimiter()
    apps = [Flask(f"app{i}") for i in range(2)]
    for app, capacity in zip(apps, (1, 2), strict=True):
        app.config["RATELIMIT"] = {"KEY_PREFIX": key_prefix, "DEFAULT_POLICY": "default",
                                   "POLICIES": {"default": {"capacity": capacity,
                                                            "refill_rate": 0.001}}}  # fmt: skip
        app.add_url_rule("/", "index", lambda: "ok")
        limiter.init_app(app)
    for app, capacity in zip(apps, (1, 2), strict=True):
        codes = [app.test_client().get("/").status_code for _ in range(capacity + 1)]
        assert codes == [200] * capacity + [429]


def test_retry_after_is_never_early_on_the_real_clock(storage_url: str, key_prefix: str) -> None:
    """Wait exactly Retry-After, retry the same request: admitted (memory clock or Redis TIME)."""
    # 4 tokens/s: the 3 an upload costs come back within 0.75 s, so Retry-After is 1,
    # the shortest wait the header can name (it is rounded up, never down to 0).
    shape = {"capacity": 3, "refill_rate": 4.0}
    policies = {"default": shape, "upload": {**shape, "cost": 3}}
    client = make_app(storage_url, key_prefix, POLICIES=policies)[0].test_client()
    assert client.post("/upload").status_code == 200
    denied = client.post("/upload")
    assert denied.status_code == 429
    time.sleep(int(denied.headers["Retry-After"]))
    assert client.post("/upload").status_code == 200


def test_a_composite_policy_needs_every_bucket(storage_url: str, key_prefix: str) -> None:
    app, _ = make_app(storage_url, key_prefix, POLICIES=COMPOSITE)
    client = app.test_client()
    assert [client.get("/ping").status_code for _ in range(4)] == [200, 200, 200, 429]
    denied = client.get("/ping")
    assert denied.headers["X-RateLimit-Limit"] == "3"  # the slow bucket holds it back
    assert denied.json["retry_after"] == pytest.approx(1 / SLOW, rel=0.01)


@pytest.mark.parametrize("mode", ["enforce", "shadow"])
def test_on_breach_hears_each_refusal_of_its_app_once(
    storage_url: str, key_prefix: str, mode: str
) -> None:
    heard: list[Event] = []
    app, _ = make_app(storage_url, key_prefix, on_breach=heard.append, MODE=mode)
    other, _ = make_app(storage_url, key_prefix + "o")  # another app: not its breaches
    everything: list[Event] = []
    hub.subscribe(everything.append)
    try:
        codes = [app.test_client().get("/ping").status_code for _ in range(8)]
        other_codes = [other.test_client().get("/ping").status_code for _ in range(8)]
    finally:
        hub.unsubscribe(everything.append)
    refused = "shadow_denied" if mode == "shadow" else ("denied", "shed")
    assert codes == ([200] * 8 if mode == "shadow" else [200] * 5 + [429] * 3)
    assert other_codes == [200] * 5 + [429] * 3
    assert len(heard) == 3 and all(e.outcome in refused for e in heard)
    assert len(everything) == 16  # one event per decision, both apps
    assert [e.outcome for e in everything[:5]] == ["allowed"] * 5


def test_metrics_route_serves_prometheus_text(storage_url: str, key_prefix: str) -> None:
    app, _ = make_app(storage_url, key_prefix, METRICS=True)
    metrics_route(app)
    client = app.test_client()
    client.get("/ping")
    page = client.get("/metrics")
    assert page.status_code == 200 and "X-RateLimit-Remaining" not in page.headers
    assert b'ratelimit_decisions_total{outcome="allowed",policy="default"}' in page.data


def policy_app(raw: dict[str, Any]) -> Flask:
    """Two routes, each charged its policy's own cost; the settings as generated."""
    app = Flask(__name__)
    app.config["RATELIMIT"] = {"STORAGE_URL": "memory://", **raw}
    limiter = RateLimiter()
    app.get("/0")(limiter.limit("default")(lambda: "0"))
    app.get("/1", endpoint="upload")(limiter.limit("upload")(lambda: "1"))
    limiter.init_app(app)
    return app


@settings(max_examples=PROPERTY_EXAMPLES, deadline=None)
@with_hostile_examples()
@given(raw=settings_dicts, requests=visits)
def test_accepted_settings_never_give_a_500(raw: dict[str, Any], requests: Any) -> None:
    """Refused at init_app with a ConfigError (nothing else), or only 200s and 429s."""
    try:
        app = policy_app(raw)
    except ConfigError:
        event("refused at init_app")
        return
    event("accepted")
    client = app.test_client()
    for route, forwarded_for in requests:
        headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
        response = client.get(f"/{route}", headers=headers)
        check_headers(response.status_code, response.headers)
