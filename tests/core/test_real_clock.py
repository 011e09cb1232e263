"""The real clocks: waiting exactly ``retry_after`` is enough (memory: monotonic; Redis:
the server's TIME). The only tests that sleep; they sleep a fraction of a second."""

from __future__ import annotations

import time

import pytest

from ratelimit_app.core import RateLimitConfig, render_headers

FAST = RateLimitConfig(capacity=2, refill_rate=8.0)


@pytest.mark.parametrize("cost", [1, 2])
def test_waiting_retry_after_is_enough(make_limiter, cost: int) -> None:
    lim = make_limiter(FAST, use_clock=None, shed_denials=True)
    lim.allow("w", 2)
    denied = lim.allow("w", cost)
    assert not denied.allowed and 0 < denied.retry_after <= cost / 8.0
    assert int(render_headers(denied, "p")["Retry-After"]) >= denied.retry_after
    time.sleep(denied.retry_after)
    assert lim.allow("w", cost).allowed
