"""Bad keys, tiers, exemptions and charging rules fail at start-up, in every integration,
with a message naming the setting (and in Django a stable check id): never at the first
request, never as a 500.

One table, run through the core parser, Django's system checks and its start-up refusal,
Flask's ``init_app`` and FastAPI's ``RateLimiter``; the same mistakes given to a view's
own arguments fail when the view is decorated.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from flask import Flask

from ratelimit_app.adapters import fastapi as fastapi_adapter
from ratelimit_app.adapters import flask as flask_adapter
from ratelimit_app.checks import refuse_bad_settings
from ratelimit_app.core import ConfigError, parse_settings
from ratelimit_app.decorators import ratelimit

P = {"capacity": 3, "refill_rate": 1.0}
TIERS = {"free": P, "pro": {"capacity": 30, "refill_rate": 10.0}}


GOOD = {"default": P, "upload": {**P, "cost": 3}}  # what tests/urls.py's views name


def policy(**extra: Any) -> dict[str, Any]:
    return {"POLICIES": {**GOOD, "p": {**P, **extra}}}


def tiered(**extra: Any) -> dict[str, Any]:
    return {"POLICIES": {**GOOD, "p": {"tiers": TIERS, **extra}}}


# (id, settings, Django check id, what the message says, with the setting's name)
BAD = [
    ("unknown-key-kind", policy(key="cookie:session"), "E050",
     r"\['POLICIES'\]\['p'\]\['key'\]: unknown key 'cookie:session'"),
    ("bad-header-name", policy(key="header:X Api Key"), "E050",
     r"\['POLICIES'\]\['p'\]\['key'\]: 'header:X Api Key': 'X Api Key' is not a header name"),
    ("key-path-does-not-import", policy(key="tests.nowhere.client"), "E050",
     r"\['POLICIES'\]\['p'\]\['key'\]: key 'tests.nowhere.client' does not import"),
    ("bad-fallback-setting", policy(key=["ip"], on_missing_key="guess"), "E050",
     r"\['POLICIES'\]\['p'\]\['key'\]: on_missing_key must be one of"),
    ("tier-resolver-does-not-import", tiered(tier="tests.nowhere.plan"), "E051",
     r"\['POLICIES'\]\['p'\]\['tier'\]: tier 'tests.nowhere.plan' does not import"),
    ("tier-missing-from-tiers", tiered(tier="tests.contract_rules.plan", default_tier="gold"),
     "E051", r"\['POLICIES'\]\['p'\]\['tier'\]: default_tier 'gold' is not one of the tiers"),
    ("tier-without-resolver", tiered(), "E051",
     r"\['POLICIES'\]\['p'\]\['tier'\]: tier must be a callable"),
    ("bad-tier-bucket", tiered(tier="tests.contract_rules.plan",
                               tiers={"free": {"capacity": 0, "refill_rate": 1}}), "E003",
     r"\['POLICIES'\]\['p'\]\['tiers'\]\['free'\]: capacity must be"),
    ("cidr-does-not-parse", {"EXEMPT": {"ips": ["10.0.0.0/33"]}}, "E052",
     r"\['EXEMPT'\]: \['ips'\]: \[0\] '10.0.0.0/33' is not a network"),
    ("exempt-unknown-key", {"EXEMPT": {"admins": True}}, "E052",
     r"\['EXEMPT'\]: must be a dict with keys among"),
    ("deduct-when-not-callable", policy(deduct_when="tests.contract_rules.not_callable"),
     "E053", r"\['POLICIES'\]\['p'\]\['deduct_when'\]: deduct_when "
     r"'tests.contract_rules.not_callable' is not callable"),
    ("charge-on-status-does-not-parse", policy(charge_on_status="only good ones"), "E053",
     r"\['POLICIES'\]\['p'\]\['charge_on_status'\]: charge_on_status must read like"),
]  # fmt: skip
IDS = [row[0] for row in BAD]


@pytest.mark.parametrize(("name", "raw", "check_id", "message"), BAD, ids=IDS)
def test_the_core_parser_names_the_setting(
    name: str, raw: dict[str, Any], check_id: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=r"^RATELIMIT" + message):
        parse_settings(raw)


@pytest.mark.parametrize(("name", "raw", "check_id", "message"), BAD, ids=IDS)
def test_django_reports_each_with_its_id_and_refuses_to_start(
    settings: Any, name: str, raw: dict[str, Any], check_id: str, message: str
) -> None:
    settings.RATELIMIT = {**raw, "CACHE": "default"}
    found = checks.run_checks(tags=["ratelimit"])
    assert [m.id for m in found if m.id.startswith("ratelimit.")] == [f"ratelimit.{check_id}"]
    with pytest.raises(ImproperlyConfigured, match=f"ratelimit.{check_id}"):
        refuse_bad_settings()


@pytest.mark.parametrize(("name", "raw", "check_id", "message"), BAD, ids=IDS)
def test_flask_init_app_refuses(
    name: str, raw: dict[str, Any], check_id: str, message: str
) -> None:
    app = Flask(__name__)
    app.config["RATELIMIT"] = raw
    with pytest.raises(ConfigError, match=r"^app.config\['RATELIMIT'\]" + message):
        flask_adapter.RateLimiter(app)


@pytest.mark.parametrize(("name", "raw", "check_id", "message"), BAD, ids=IDS)
def test_fastapi_refuses_when_the_limiter_is_built(
    name: str, raw: dict[str, Any], check_id: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=r"^RateLimiter settings" + message):
        fastapi_adapter.RateLimiter(raw)


def test_django_refuses_bad_exempt_paths_and_an_unknown_default_policy(settings: Any) -> None:
    settings.RATELIMIT = {"POLICIES": GOOD, "EXEMPT_PATHS": "admin/"}
    assert [m.id for m in checks.run_checks(tags=["ratelimit"])] == ["ratelimit.E054"]
    settings.RATELIMIT = {"POLICIES": GOOD, "DEFAULT_POLICY": "nope"}
    assert [m.id for m in checks.run_checks(tags=["ratelimit"])] == ["ratelimit.E011"]


# The same mistakes as a view's own arguments: refused when the view is decorated.
VIEW_ARGS = [
    ({"key": "cookie:session"}, "unknown key 'cookie:session'"),
    ({"key": "header:X Api Key"}, "is not a header name"),
    ({"exempt_when": "tests.nowhere.internal"}, "exempt_when 'tests.nowhere.internal' does not"),
    ({"deduct_when": 42}, "deduct_when must be a callable or a dotted path"),
    ({"charge_on_status": "5xx or so"}, "charge_on_status must read like"),
]


@pytest.mark.parametrize(("given", "message"), VIEW_ARGS)
def test_a_view_s_own_arguments_fail_when_it_is_decorated(
    given: dict[str, Any], message: str
) -> None:
    limiter = flask_adapter.RateLimiter()
    for make in (
        lambda: ratelimit("default", **given),
        lambda: limiter.limit("default", **given),
        lambda: fastapi_adapter.RateLimit("default", **given),
        lambda: fastapi_adapter.RateLimitMiddleware(None, "default", **given),  # type: ignore
    ):
        with pytest.raises(ConfigError, match=message):
            make()


def test_a_drf_view_s_bad_throttle_key_fails_manage_py_check(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.bad_rule_urls"
    found = checks.run_checks(tags=["ratelimit"])
    assert [(m.id, "BadKeyView" in m.msg) for m in found] == [("ratelimit.E050", True)]
