"""What a view asks of the limiter (its policy, cost, key, exemption and charging), and
finding limited views.

The DRF throttle reads a view's limit here on every request; the system checks find
every limited view in the URLconf and verify the same attributes. Two kinds are found:
functions wrapped by ``@ratelimit`` (they carry their ``Limit`` as ``ratelimit_limit``)
and DRF views whose throttle classes include ``TokenBucketThrottle`` (policy from
``throttle_scope``, costs from ``throttle_cost`` and ``throttle_cost_by_method``, and
``throttle_key``, ``throttle_on_missing_key``, ``throttle_exempt_when``,
``throttle_deduct_when``, ``throttle_charge_on_status``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from django.views import View

from .core.config import ConfigError
from .core.policies import Policy
from .core.request_limits import Limit

__all__ = [
    "DEFAULT_POLICY",
    "drf_limit",
    "implements",
    "limited_views",
    "limits_itself",
    "view_cost",
    "view_policy_name",
    "view_rule_errors",
]

DEFAULT_POLICY = "default"


def view_policy_name(view: Any) -> str:
    """``throttle_scope`` (DRF's own attribute), else ``"default"``."""
    return getattr(view, "throttle_scope", None) or DEFAULT_POLICY


def view_cost(view: Any, method: str, policy: Policy) -> float:
    """``throttle_cost_by_method[method]``, else ``throttle_cost``, else the policy's."""
    by_method = getattr(view, "throttle_cost_by_method", None) or {}
    cost = by_method.get(method.upper(), getattr(view, "throttle_cost", None))
    return policy.cost if cost is None else policy.check_cost(cost)


def implements(view_class: Any, method: str) -> bool:
    """Whether a class-based view has a handler of its own for ``method``: a method it
    lacks is a 405, and the framework's automatic ``OPTIONS`` answer costs nothing."""
    name = method.lower()
    if name not in getattr(view_class, "http_method_names", ()):
        return False
    if name == "head" and not hasattr(view_class, "head"):
        name = "get"  # Django serves HEAD with the GET handler
    handler = getattr(view_class, name, None)
    return handler is not None and not (name == "options" and handler in _AUTOMATIC)


def _automatic_options() -> tuple[Any, ...]:
    found: list[Any] = [View.options]
    try:
        from rest_framework.views import APIView
    except ImportError:  # pragma: no cover - DRF is optional
        return tuple(found)
    return (*found, APIView.options)


_AUTOMATIC = _automatic_options()
_DRF_ARGS = ("key", "on_missing_key", "exempt_when", "deduct_when", "charge_on_status")


@lru_cache(maxsize=1024)
def drf_limit(view_class: type, policy: str, cost: float | None) -> Limit:
    """A DRF view's ``Limit`` (its ``throttle_*`` attributes), read once per class."""
    given: Any = {arg: getattr(view_class, f"throttle_{arg}", None) for arg in _DRF_ARGS}
    given["on_missing_key"] = given["on_missing_key"] or "next"
    return Limit.of(policy, cost, **given)


def limits_itself(view_func: Any) -> bool:
    """The view is charged by its own ``@ratelimit`` or by our DRF throttle, so the
    middleware's global policy leaves it alone (one charge, not two)."""
    if getattr(view_func, "ratelimit_limit", None) is not None:
        return True
    view_class = getattr(view_func, "cls", None)
    return view_class is not None and _throttled(view_class)


def _throttled(view_class: Any) -> bool:
    try:
        from .throttling import TokenBucketThrottle
    except ImportError:  # pragma: no cover - DRF is optional
        return False
    throttles = getattr(view_class, "throttle_classes", ())
    return any(isinstance(t, type) and issubclass(t, TokenBucketThrottle) for t in throttles)


def _declared_costs(view: Any) -> list[Any]:
    """The costs a view states explicitly, for the checks to verify."""
    costs = list((getattr(view, "throttle_cost_by_method", None) or {}).values())
    if getattr(view, "throttle_cost", None) is not None:
        costs.append(view.throttle_cost)
    return costs


def _callbacks(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _callbacks(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def _drf_view(route: str, callback: Any) -> tuple[str, str, list[Any]] | None:
    view_class = getattr(callback, "cls", None)
    if view_class is None or not _throttled(view_class):
        return None
    where = f"{view_class.__qualname__} at '{route}'"
    return where, view_policy_name(view_class), _declared_costs(view_class)


def limited_views() -> Iterator[tuple[str, str, list[Any]]]:
    """``(where, policy name, explicit costs)`` for each limited view."""
    for route, callback in _callbacks(get_resolver().url_patterns):
        limit = getattr(callback, "ratelimit_limit", None)
        if limit is not None:
            where = f"{getattr(callback, '__qualname__', callback)} at '{route}'"
            yield where, limit.policy, [] if limit.cost is None else [limit.cost]
            continue
        found = _drf_view(route, callback)
        if found is not None:
            yield found


def view_rule_errors() -> Iterator[ConfigError]:
    """A DRF view's ``throttle_key`` / ``_exempt_when`` / ``_deduct_when`` /
    ``_charge_on_status`` that can never work (a decorator's fail when it is applied)."""
    for route, callback in _callbacks(get_resolver().url_patterns):
        found = _drf_view(route, callback)
        if found is not None:
            try:
                drf_limit(callback.cls, found[1], None)
            except ConfigError as exc:
                yield exc.at(found[0])
