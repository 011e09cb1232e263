"""Property test: random traces through every store agree with a tiny reference model."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratelimit_app.core import RateLimitConfig
from tests.conftest import ManualClock


def reference(capacity: float, rate: float, trace: list[tuple[float, float]]) -> list:
    """The three steps of docs/semantics.md, written as plainly as possible: a denial
    reports the refilled tokens and stores nothing."""
    tokens, updated, now, out = capacity, None, 1_000.0, []
    for step, cost in trace:
        now += step
        held = tokens
        if updated is not None:
            held = min(capacity, tokens + max(0.0, now - updated) * rate)
        allowed = held >= cost
        if allowed:
            tokens = held - cost
            updated = now if updated is None else max(updated, now)
        out.append((allowed, held - cost if allowed else held))
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
    # Denial shedding answers some denials from a bound computed in one step instead of
    # the store's step-by-step refill: same decisions, floats equal only to ~1e-15. It has
    # its own test below; this one compares bit for bit.
    lim = make_limiter(RateLimitConfig(capacity, rate), use_clock=clock, shed_denials=False)
    identity = f"model-{next(_fresh)}"
    got = []
    for step, cost in trace:
        clock.advance(step)
        d = lim.allow(identity, cost)
        got.append((d.allowed, d.remaining))
    assert got == reference(capacity, rate, trace)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    capacity=st.sampled_from([3, 10]),
    rate=st.sampled_from([0.1, 1.0]),
    # Forward time only: a shed denial writes nothing, so after a backwards clock step the
    # store has not seen the latest time and holds at most the reference's tokens (safe,
    # not bit-equal); backwards steps are covered with shedding off above.
    trace=st.lists(st.tuples(st.floats(0, 5, allow_nan=False), costs), min_size=1, max_size=30),
)
def test_denial_shedding_never_changes_a_decision(make_limiter, capacity, rate, trace) -> None:
    clock = ManualClock()
    lim = make_limiter(RateLimitConfig(capacity, rate), use_clock=clock, shed_denials=True)
    identity = f"shed-{next(_fresh)}"
    expected = reference(capacity, rate, trace)
    for (step, cost), (allowed, tokens) in zip(trace, expected, strict=True):
        clock.advance(step)
        d = lim.allow(identity, cost)
        assert d.allowed == allowed
        # No time passes during a call on a manual clock, so the lower bound a shed denial
        # reports is what the bucket holds (to rounding), as a store decision reports.
        assert abs(d.remaining - tokens) <= 1e-9 * capacity


def reference_with_refunds(configs: list[RateLimitConfig], trace: list[tuple]) -> list:
    """The same steps over one or several buckets, with refunds: a take is all buckets
    or none (the binding bucket's tokens reported, as ``bucket.binding`` chooses it; a
    denial stores nothing); a refund refills, adds to every bucket, capped at its
    capacity, and stores."""
    state: list[list] = [[c.capacity, None] for c in configs]
    now, out = 1_000.0, []
    for op, step, amount in trace:
        now += step
        held = [
            tokens if updated is None
            else min(c.capacity, tokens + max(0.0, now - updated) * c.refill_rate)
            for (tokens, updated), c in zip(state, configs, strict=True)
        ]  # fmt: skip
        allowed = op == "refund" or all(tokens >= amount for tokens in held)
        if op == "take":
            out.append((allowed, _binding_tokens(configs, held, allowed, amount)))
        if allowed:
            for bucket, tokens, c in zip(state, held, configs, strict=True):
                after = min(c.capacity, tokens + amount) if op == "refund" else tokens - amount
                bucket[:] = [after, now if bucket[1] is None else max(bucket[1], now)]
    return out


def _binding_tokens(configs: list, held: list, allowed: bool, cost: float) -> float:
    """Denied: the denying bucket with the longest wait; allowed: the one that holds the
    next request back longest, then the emptiest (docs/semantics.md)."""
    if not allowed:
        denied = [(t, c) for t, c in zip(held, configs, strict=True) if t < cost]
        return max(denied, key=lambda d: (cost - d[0]) / d[1].refill_rate)[0]
    after = [(t - cost, c) for t, c in zip(held, configs, strict=True)]
    return max(after, key=lambda d: (max(0.0, cost - d[0]) / d[1].refill_rate, -d[0]))[0]


ops = st.sampled_from(["take", "take", "refund"])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    composite=st.booleans(),
    capacity=st.sampled_from([3, 3.5, 10]),
    rate=st.sampled_from([0.1, 0.3, 1.0]),
    trace=st.lists(st.tuples(ops, steps, costs), min_size=1, max_size=25),
)
def test_takes_and_refunds_match_the_model(make_limiter, composite, capacity, rate, trace) -> None:
    """Refunds interleaved with takes, on one bucket and on a composite policy, on every
    store: each decision agrees with the model bit for bit."""
    configs = [RateLimitConfig(capacity, rate)]
    if composite:
        configs.append(RateLimitConfig(capacity * 2, rate / 3))
    clock = ManualClock()
    lim = make_limiter(configs, use_clock=clock, shed_denials=False)
    identity = f"refund-{next(_fresh)}"
    got = []
    for op, step, amount in trace:
        clock.advance(step)
        if op == "refund":
            lim.run(lim.limiter.refund(identity, amount))
            continue
        d = lim.allow(identity, amount)
        got.append((d.allowed, d.remaining))
    assert got == reference_with_refunds(configs, trace)
