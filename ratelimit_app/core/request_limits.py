"""One request through a policy: exempt or not, which key and tier, the decision, and
after the response, the refund its outcome asks for.

Every integration (the DRF throttle, ``@ratelimit``, the Django middleware, Flask and
FastAPI) describes what a view asks with a ``Limit``, binds it once per app to that
app's settings (``bind``: the policy's key, tiers and charging, overridden by the
view's own), and on each request calls ``check`` (or ``acheck``) with a
``RequestFacts`` and ``settle`` (or ``asettle``) with the response's status. Only how to
read a request is written per framework.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypedDict, TypeVar, Unpack

from .bucket import Decision
from .config import Problem
from .exemptions import Exemptions, aexempt_by, exempt_by
from .limiter import AsyncTokenBucketRateLimiter, TokenBucketRateLimiter
from .limits import Limits
from .outcomes import CHARGE_ALL, Charging, check_charging
from .request_keys import KeyRule, RequestFacts, TierRule, check_key, import_callable

__all__ = ["Bound", "Charge", "Limit", "Rules", "acheck", "asettle", "bind", "check", "settle"]

L = TypeVar("L", TokenBucketRateLimiter, AsyncTokenBucketRateLimiter)
#: A default key when neither the policy nor the view names one: Django charges
#: ``user_or_ip``; Flask and FastAPI their app's ``identity`` (the client address).
USER_OR_IP = check_key("user_or_ip")


class Rules(TypedDict, total=False):
    """What a view may say beside its policy and cost, in every integration."""

    key: Any  # a key, a list of keys, a callable or its dotted path
    on_missing_key: str  # "next" (default) or "skip"
    exempt_when: Any  # a callable of the request, or its dotted path
    deduct_when: Any  # a callable of the response, or its dotted path
    charge_on_status: Any  # "not 5xx", "2xx", ...


@dataclass(frozen=True, slots=True)
class Limit:
    """What a view (or an app-wide middleware) asks: a policy, and optionally its own
    cost, key, exemption and charging rule, checked when the ``Limit`` is made."""

    policy: str
    cost: float | None = None
    key: KeyRule | None = None
    exempt_when: Callable[..., Any] | None = None
    charging: Charging | None = None

    @classmethod
    def of(cls, policy: str, cost: float | None = None, **rules: Unpack[Rules]) -> Limit:
        """Read an integration's arguments: a bad one raises ``ConfigError`` now."""
        key, when = rules.get("key"), rules.get("exempt_when")
        return cls(
            policy,
            cost,
            None if key is None else check_key(key, rules.get("on_missing_key", "next")),
            None if when is None else import_callable(when, "exempt_when", Problem.EXEMPT),
            check_charging(rules.get("deduct_when"), rules.get("charge_on_status")),
        )


@dataclass(frozen=True, slots=True)
class Bound(Generic[L]):
    """A ``Limit`` with everything resolved against one app's settings and limiters."""

    policy: str
    cost: float
    key: KeyRule
    tier: TierRule | None
    limiters: dict[str, L]  # the policy's, or one per tier for a tiered policy
    exemptions: Exemptions
    exempt_when: Callable[..., Any] | None
    charging: Charging
    exempting: bool  # any exemption to look at (else the check skips them)


def bind(limits: Limits[Any, L], limit: Limit, default_key: KeyRule = USER_OR_IP) -> Bound[L]:
    """``limit`` on this app (cached: views are bound once, not per request); raises
    ``ConfigError`` for an unknown policy or a cost above its capacity."""
    found: Bound[L] | None = limits.rules.get((limit, default_key))
    if found is None:
        policy = limits.policy(limit.policy)
        cost = policy.cost if limit.cost is None else policy.check_cost(limit.cost)
        exemptions = limits.settings.exempt
        names = [policy.name] if policy.tier is None else list(policy.tiers)
        found = Bound(
            policy.name, cost, limit.key or policy.key or default_key, policy.tier,
            {name: limits.limiter(name) if policy.tier is None else
             limits.limiters[f"{policy.name}:{name}"] for name in names},
            exemptions, limit.exempt_when, limit.charging or policy.charging or CHARGE_ALL,
            exemptions.active or limit.exempt_when is not None,
        )  # fmt: skip
        limits.rules[(limit, default_key)] = found
    return found


@dataclass(slots=True)
class Charge(Generic[L]):
    """A request the limiter decided: what to refund if its outcome does not count."""

    bound: Bound[L]
    limiter: L
    identity: str
    decision: Decision
    settled: bool = False  # its outcome was looked at (a request settles once)

    @property
    def policy(self) -> str:
        return self.bound.policy

    @property
    def reads_response(self) -> bool:
        """Whether settling looks at the response itself (``deduct_when``), not only at
        its status: an adapter that must build a response object for it can skip that."""
        return self.bound.charging.deduct_when is not None

    def refundable(self, status: int, response: Any) -> bool:
        """Whether to give the tokens back (once: a second look answers False)."""
        decision, settled = self.decision, self.settled
        self.settled = True
        if settled or not decision.allowed or decision.shadowed:
            return False  # nothing was taken, or it was given back already
        return not self.bound.charging.keeps(status, response)


def check(
    bound: Bound[TokenBucketRateLimiter], facts: RequestFacts
) -> Charge[TokenBucketRateLimiter] | None:
    """The decision for one request, or None when it is exempt or has no key (then it is
    not charged and gets no headers). ``StoreError`` under ``raise`` propagates."""
    if bound.exempting and (bound.exemptions.exempt(facts) or exempt_by(bound.exempt_when, facts)):
        return None
    identity = bound.key.identity(facts)
    if identity is None:
        return None
    tier = bound.tier
    limiter = bound.limiters[bound.policy if tier is None else tier.tier(facts)]
    return Charge(bound, limiter, identity, limiter.allow_request(identity, bound.cost))


async def acheck(
    bound: Bound[AsyncTokenBucketRateLimiter], facts: RequestFacts
) -> Charge[AsyncTokenBucketRateLimiter] | None:
    if bound.exempting and (
        bound.exemptions.exempt(facts) or await aexempt_by(bound.exempt_when, facts)
    ):
        return None
    identity = await bound.key.aidentity(facts)
    if identity is None:
        return None
    tier = bound.tier
    limiter = bound.limiters[bound.policy if tier is None else await tier.atier(facts)]
    return Charge(bound, limiter, identity, await limiter.allow_request(identity, bound.cost))


def settle(charge: Charge[TokenBucketRateLimiter] | None, status: int, response: Any) -> None:
    """After the response: give the tokens back if its outcome does not count."""
    if charge is not None and charge.refundable(status, response):
        charge.limiter.refund(charge.identity, charge.decision.cost)


async def asettle(
    charge: Charge[AsyncTokenBucketRateLimiter] | None, status: int, response: Any
) -> None:
    if charge is not None and charge.refundable(status, response):
        await charge.limiter.refund(charge.identity, charge.decision.cost)
