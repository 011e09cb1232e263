"""Property test: random traces through every store agree with a tiny reference model."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratelimit_app.core import RateLimitConfig
from tests.conftest import ManualClock


def reference(capacity: float, rate: float, trace: list[tuple[float, float]]) -> list:
    """DESIGN.md's three steps, written as plainly as possible."""
    tokens, updated, now, out = capacity, None, 1_000.0, []
    for step, cost in trace:
        now += step
        if updated is not None:
            tokens = min(capacity, tokens + max(0.0, now - updated) * rate)
        allowed = tokens >= cost
        tokens = tokens - cost if allowed else tokens
        updated = now if updated is None else max(updated, now)
        out.append((allowed, tokens))
    return out


_fresh = itertools.count()
costs = st.one_of(st.sampled_from([0, 1, 2, 3]), st.floats(0, 3, allow_nan=False))
steps = st.one_of(st.sampled_from([0.0, 0.5, -1.0]), st.floats(-2, 5, allow_nan=False))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    capacity=st.sampled_from([3, 3.5, 10]),
    rate=st.sampled_from([0.1, 0.3, 1.0]),
    trace=st.lists(st.tuples(steps, costs), min_size=1, max_size=25),
)
def test_store_matches_reference_model(make_limiter, capacity, rate, trace) -> None:
    clock = ManualClock()
    lim = make_limiter(RateLimitConfig(capacity, rate), use_clock=clock)
    identity = f"model-{next(_fresh)}"
    got = []
    for step, cost in trace:
        clock.advance(step)
        d = lim.allow(identity, cost)
        got.append((d.allowed, d.remaining))
    assert got == reference(capacity, rate, trace)
