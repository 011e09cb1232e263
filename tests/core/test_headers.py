"""Header rendering and the 429 body, table-driven."""

from __future__ import annotations

import pytest

from ratelimit_app.core import RateLimitConfig, denial_body, render_headers
from ratelimit_app.core.bucket import take

UPLOAD = RateLimitConfig(capacity=5, refill_rate=1.0)


def decision_after(costs: list[float], config: RateLimitConfig = UPLOAD):
    state, decision = None, None
    for cost in costs:
        state, decision = take(state, config, 100.0, cost)
    return decision


def test_allowed_headers_both_families() -> None:
    headers = render_headers(decision_after([3]), "upload")
    assert headers == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "2",
        "X-RateLimit-Reset": "3",
        "RateLimit-Policy": '"upload";q=5;w=5',
        "RateLimit": '"upload";r=2;t=1',
    }


def test_denied_headers_carry_retry_after() -> None:
    headers = render_headers(decision_after([3, 3]), "upload")
    assert headers["Retry-After"] == "1"
    assert headers["RateLimit"] == '"upload";r=2;t=1'
    assert headers["X-RateLimit-Remaining"] == "2"


@pytest.mark.parametrize(
    ("retry_after", "header"), [(0.001, "1"), (0.5, "1"), (1.0, "1"), (1.0001, "2"), (7.2, "8")]
)
def test_retry_after_rounds_up_never_early(retry_after: float, header: str) -> None:
    config = RateLimitConfig(capacity=10, refill_rate=1.0)
    # drain to 10 - (10 - retry_after) tokens short of a cost-10 request
    state, _ = take(None, config, 0.0, 10 - (10 - retry_after))
    decision = take(state, config, 0.0, 10)[1]
    assert not decision.allowed
    assert render_headers(decision, "p")["Retry-After"] == header


def test_fractional_remaining_is_floored_and_families_switch_off() -> None:
    config = RateLimitConfig(capacity=2.5, refill_rate=0.5)
    decision = decision_after([1.2], config)
    assert render_headers(decision, "p", ietf=False) == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "1",
        "X-RateLimit-Reset": "3",
    }
    only_ietf = render_headers(decision, "p", legacy=False)
    assert set(only_ietf) == {"RateLimit-Policy", "RateLimit"}
    assert only_ietf["RateLimit-Policy"] == '"p";q=2;w=5'


def test_denial_body() -> None:
    body = denial_body(decision_after([3, 3]))
    assert body == {"detail": "Request was throttled. Expected available in 1 second.",
                    "retry_after": 1.0}  # fmt: skip
