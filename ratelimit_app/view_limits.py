"""What a view asks of the limiter (its policy and cost), and finding limited views.

The DRF throttle reads a view's policy and cost here on every request; the system checks
find every limited view in the URLconf and verify the same attributes. Two kinds are
found: functions wrapped by ``@ratelimit`` (they carry
``ratelimit_policy``/``ratelimit_cost``) and DRF views whose throttle classes include
``TokenBucketThrottle`` (policy from ``throttle_scope``, costs from ``throttle_cost`` and
``throttle_cost_by_method``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

from .core.policies import Policy

__all__ = ["DEFAULT_POLICY", "limited_views", "view_cost", "view_policy_name"]

DEFAULT_POLICY = "default"


def view_policy_name(view: Any) -> str:
    """``throttle_scope`` (DRF's own attribute), else ``"default"``."""
    return getattr(view, "throttle_scope", None) or DEFAULT_POLICY


def view_cost(view: Any, method: str, policy: Policy) -> float:
    """``throttle_cost_by_method[method]``, else ``throttle_cost``, else the policy's."""
    by_method = getattr(view, "throttle_cost_by_method", None) or {}
    cost = by_method.get(method.upper(), getattr(view, "throttle_cost", None))
    return policy.cost if cost is None else policy.check_cost(cost)


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
    if view_class is None:
        return None
    try:
        from .throttling import TokenBucketThrottle
    except ImportError:  # pragma: no cover - DRF is optional
        return None
    throttles = getattr(view_class, "throttle_classes", ())
    if not any(isinstance(t, type) and issubclass(t, TokenBucketThrottle) for t in throttles):
        return None
    where = f"{view_class.__qualname__} at '{route}'"
    return where, view_policy_name(view_class), _declared_costs(view_class)


def limited_views() -> Iterator[tuple[str, str, list[Any]]]:
    """``(where, policy name, explicit costs)`` for each limited view."""
    for route, callback in _callbacks(get_resolver().url_patterns):
        policy = getattr(callback, "ratelimit_policy", None)
        if policy is not None:
            cost = getattr(callback, "ratelimit_cost", None)
            where = f"{getattr(callback, '__qualname__', callback)} at '{route}'"
            yield where, policy, [] if cost is None else [cost]
            continue
        found = _drf_view(route, callback)
        if found is not None:
            yield found
