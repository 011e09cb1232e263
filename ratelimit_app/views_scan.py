"""Find rate-limited views in the URLconf, so the checks can verify what they name.

Two kinds are found: functions wrapped by ``@ratelimit`` (they carry
``ratelimit_policy``/``ratelimit_cost``) and DRF views whose throttle classes include
``TokenBucketThrottle`` (policy from ``throttle_scope``, costs from ``throttle_cost`` and
``throttle_cost_by_method``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

__all__ = ["limited_views"]

DEFAULT_POLICY = "default"


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
    policy = getattr(view_class, "throttle_scope", None) or DEFAULT_POLICY
    costs = list((getattr(view_class, "throttle_cost_by_method", None) or {}).values())
    if getattr(view_class, "throttle_cost", None) is not None:
        costs.append(view_class.throttle_cost)
    return f"{view_class.__qualname__} at '{route}'", policy, costs


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
