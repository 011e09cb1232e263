"""Keys, tiers, exemptions and charging rules on plain facts, without a framework: what
every integration relies on, proven once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from ratelimit_app.core import MemoryStore, RateLimitConfig, TokenBucketRateLimiter
from ratelimit_app.core.exemptions import NO_EXEMPTIONS, check_exempt, is_preflight
from ratelimit_app.core.keys import build_key, parse_key
from ratelimit_app.core.limits import sync_limits
from ratelimit_app.core.outcomes import Charging, parse_statuses
from ratelimit_app.core.policies import make_limiters, parse_settings
from ratelimit_app.core.request_keys import check_key, own_key, tier_rule, user_id
from ratelimit_app.core.request_limits import Limit, acheck, bind, check, settle


@dataclass
class User:
    pk: int | None = 7
    is_authenticated: bool = True
    is_staff: bool = False
    is_superuser: bool = False


@dataclass
class Facts:
    address: str = "203.0.113.7"
    who: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def ip(self) -> str:
        return self.address

    def user(self) -> Any:
        return self.who

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def query(self, name: str) -> str | None:
        return self.params.get(name)

    def call(self, func: Callable[..., Any]) -> Any:
        return func(self)


@pytest.mark.parametrize(
    ("key", "facts", "identity"),
    [
        ("ip", Facts(), "ip:203.0.113.7"),
        ("user", Facts(who=User()), "user:7"),
        ("user", Facts(who=User(is_authenticated=False)), None),
        ("user_or_ip", Facts(who=User(is_authenticated=False)), "ip:203.0.113.7"),
        ("header:X-Api-Key", Facts(headers={"X-Api-Key": "k"}), "header:k"),
        ("header:X-Api-Key", Facts(headers={"X-Api-Key": ""}), None),  # empty is missing
        ("query:api_key", Facts(params={"api_key": "q"}), "query:q"),
        (lambda facts: facts.headers.get("X-Client"), Facts(headers={"X-Client": "c"}), "key:c"),
        (["header:X-Api-Key", "query:k", "ip"], Facts(params={"k": "q"}), "query:q"),
    ],
)
def test_each_key_kind_names_its_identity(key: Any, facts: Facts, identity: str | None) -> None:
    assert check_key(key).identity(facts) == identity


def test_no_client_value_can_name_another_kind_s_bucket_or_a_key_segment() -> None:
    """A header claiming to be an address stays a header identity, and odd or long
    values are hashed by the key builder like any identity."""
    spoof = check_key(["header:X-Api-Key", "ip"]).identity(
        Facts(headers={"X-Api-Key": "ip:1.2.3.4"})
    )
    assert spoof == "header:ip:1.2.3.4"
    odd = check_key("header:X-Api-Key").identity(Facts(headers={"X-Api-Key": "a:b}{x" * 100}))
    key = build_key("rl", "api", odd or "")
    assert key.count(":") == 2 and len(key) < 64


def test_skip_stops_at_the_first_missing_key() -> None:
    assert check_key(["header:X-Api-Key", "ip"], "skip").identity(Facts()) is None
    assert check_key(["header:X-Api-Key", "ip"], "next").identity(Facts()) == "ip:203.0.113.7"


def test_an_async_callable_key_is_awaited() -> None:
    async def key(facts: Facts) -> str:
        return "async"

    assert asyncio.run(check_key(key).aidentity(Facts())) == "key:async"
    assert asyncio.run(own_key(key).aidentity(Facts())) == "async"  # the app's own identity


def test_user_id_reads_pk_id_or_username() -> None:
    @dataclass
    class Named:
        username: str = "ann"
        is_authenticated: bool = True

    assert user_id(User(pk=3)) == "3" and user_id(Named()) == "ann"
    assert user_id(None) is None and user_id(User(pk=None)) is None


def test_an_unknown_tier_is_the_default_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rule = tier_rule(lambda facts: facts.headers.get("X-Plan"), {"free": 1, "pro": 2}, "free")
    with caplog.at_level(logging.WARNING):
        tiers = [rule.tier(Facts(headers={"X-Plan": plan})) for plan in ("pro", "", "x", "x")]
        tiers.append(rule.tier(Facts()))
    assert tiers == ["pro", "free", "free", "free", "free"]
    assert len([r for r in caplog.records if "'x'" in r.getMessage()]) == 1


def test_a_tier_s_keys_carry_the_tier_and_parse_back() -> None:
    tiers = {"free": {"capacity": 2, "refill_rate": 1}, "pro": {"capacity": 9, "refill_rate": 1}}
    settings = parse_settings(
        {"POLICIES": {"api": {"tiers": tiers, "tier": "tests.contract_rules.plan"}}}
    )
    limiters = make_limiters(settings, MemoryStore())
    pro = limiters["api:pro"]
    assert limiters["api"] is limiters["api:free"]  # the default tier
    key = pro.key_for("user:7")
    assert key == "rl:api:pro:user:7"
    assert parse_key(key, "rl", {"api:free": 1, "api:pro": 1}) == ("api:pro", "user:7", 0)


def test_a_lowered_capacity_caps_the_stored_tokens_on_the_next_decision() -> None:
    """A bucket holding more than its (new, smaller) capacity: the next decision sees
    the capacity, not the stored tokens (a tier's capacity lowered mid-bucket)."""
    store = MemoryStore()
    big = TokenBucketRateLimiter(RateLimitConfig(50, 1e-9), store, name="api")
    big.allow_request("user:7")  # 49 stored
    small = TokenBucketRateLimiter(RateLimitConfig(5, 1e-9), store, name="api")
    assert small.allow_request("user:7").remaining == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("rules", "facts", "exempt"),
    [
        ({"staff": True}, Facts(who=User(is_staff=True)), True),
        ({"staff": True}, Facts(who=User(is_staff=True, is_authenticated=False)), False),
        ({"superusers": True}, Facts(who=User(is_staff=True)), False),
        ({"superusers": True}, Facts(who=User(is_superuser=True)), True),
        ({"ips": ["10.0.0.0/8"]}, Facts(address="10.9.8.7"), True),
        ({"ips": ["2001:db8::/32"]}, Facts(address="2001:db8:1:2::"), True),  # a grouped /64
        ({"ips": ["10.0.0.0/8"]}, Facts(address="unknown"), False),
        ({}, Facts(who=User(is_superuser=True)), False),
    ],
)
def test_exemptions_from_plain_facts(rules: dict[str, Any], facts: Facts, exempt: bool) -> None:
    assert check_exempt(rules).exempt(facts) is exempt


def test_preflight_needs_the_request_method_header() -> None:
    assert is_preflight("OPTIONS", "POST") and not is_preflight("OPTIONS", None)
    assert not is_preflight("GET", "POST")


@pytest.mark.parametrize(
    ("spec", "kept", "refunded"),
    [
        ("not 5xx", [200, 301, 404, 429], [500, 503]),
        ("2xx", [200, 204], [301, 404, 500]),
        ("2xx, 301", [200, 301], [302, 500]),
        ("not 401,403", [200, 500], [401, 403]),
    ],
)
def test_charge_on_status(spec: str, kept: list[int], refunded: list[int]) -> None:
    charging = Charging(statuses=parse_statuses(spec))
    assert all(charging.keeps(status, None) for status in kept)
    assert not any(charging.keeps(status, None) for status in refunded)
    assert not charging.keeps(405, None)  # a method the view lacks: never charged


def test_check_and_settle_refund_what_the_outcome_does_not_count() -> None:
    limits = sync_limits(
        parse_settings({"POLICIES": {"default": {"capacity": 3, "refill_rate": 1e-9}}}),
        MemoryStore(),
    )
    bound = bind(limits, Limit.of("default", deduct_when=lambda response: response < 500))
    lefts = []
    for status in (500, 500, 200, 200, 500):
        charge = check(bound, Facts())
        assert charge is not None
        settle(charge, status, status)
        settle(charge, status, status)  # a second look refunds nothing more
        lefts.append(charge.decision.remaining)
    assert lefts == pytest.approx([2.0, 2.0, 2.0, 1.0, 0.0], abs=1e-6)
    assert (
        check(bind(limits, Limit.of("default", exempt_when=lambda facts: True)), Facts()) is None
    )


def test_the_async_check_matches() -> None:
    from ratelimit_app.core import AsyncMemoryStore
    from ratelimit_app.core.limits import async_limits

    raw = {"POLICIES": {"default": {"capacity": 2, "refill_rate": 1e-9}}}
    limits = async_limits(parse_settings(raw), AsyncMemoryStore())

    async def run() -> list[bool]:
        bound = bind(limits, Limit.of("default", key="ip"))
        return [(await acheck(bound, Facts())).decision.allowed for _ in range(3)]  # type: ignore[union-attr]

    assert asyncio.run(run()) == [True, True, False]
    assert NO_EXEMPTIONS.exempt(Facts(who=User(is_superuser=True))) is False
