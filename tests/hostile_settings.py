"""Settings that look like numbers and names but would defeat the limiter at request time.

Each framework must refuse every one of them at start-up, with a message naming the
setting: Django when it starts (under gunicorn too, ``tests/app/test_startup.py``),
Flask at ``init_app`` and FastAPI when ``RateLimiter`` is built. Each row of ``HOSTILE``
is the common settings dict, a regex the message must match (it names the setting) and
the id of Django's check for that kind of problem.

The strategies below generate settings dicts from the same extremes and any float at
all; every framework's property test starts an app on each one and, whenever it was
accepted, checks that requests (with hostile ``X-Forwarded-For`` values) get only 200
or 429 with integer headers, never a 500.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pytest
from hypothesis import example
from hypothesis import strategies as st

from ratelimit_app.core.config import MAX_HEADER_INT
from ratelimit_app.core.failure import FAILURE_MODES

GOOD = {"capacity": 5, "refill_rate": 1.0}
F = TypeVar("F", bound=Callable[..., Any])


def _default(**bucket: object) -> dict[str, object]:
    return {"POLICIES": {"default": bucket}}


HOSTILE = [
    pytest.param(_default(capacity=math.nan, refill_rate=1.0),
                 r"\['POLICIES'\]\['default'\]: capacity must be", "E003", id="nan-capacity"),
    pytest.param(_default(capacity=5, refill_rate="1"),
                 r"\['POLICIES'\]\['default'\]: refill_rate must be a number", "E003",
                 id="string-rate"),
    pytest.param({"POLICIES": None}, r"\['POLICIES'\] must be a dict", "E002",
                 id="policies-none"),
    # capacity / refill_rate is not finite: math.ceil(inf) on every request
    pytest.param(_default(capacity=5, refill_rate=1e-320),
                 r"\['POLICIES'\]\['default'\]: refill_rate 1e-320 is too small", "E003",
                 id="subnormal-rate"),
    pytest.param({"POLICIES": {"default": {"buckets": [
                    GOOD, {"capacity": 1e14, "refill_rate": 1e-3}]}}},
                 r"\['default'\]\['buckets'\]\[1\]: refill_rate 0.001 is too small", "E003",
                 id="composite-window-too-long"),
    # a header value longer than the 15 digits of a Structured-Fields integer
    pytest.param(_default(capacity=1e16, refill_rate=1e16),
                 r"\['POLICIES'\]\['default'\]: capacity must be .* <= 999999999999999",
                 "E003", id="capacity-over-15-digits"),
    # X-RateLimit-Limit: 0 while requests pass
    pytest.param(_default(capacity=0.5, refill_rate=1.0),
                 r"\['POLICIES'\]\['default'\]: capacity must be a finite number >= 1", "E003",
                 id="capacity-below-one"),
    # one blip and the failure policy (fail open under "allow") holds forever
    pytest.param({"RETRY_INTERVAL": 1e308},
                 r"\['RETRY_INTERVAL'\]: retry_interval \(seconds\) must be .* <= 300", "E009",
                 id="retry-interval-forever"),
    pytest.param({"KEY_PREFIX": "rl\n"}, r"\['KEY_PREFIX'\]: key prefix 'rl\\n'", "E008",
                 id="prefix-newline"),
    pytest.param({"POLICIES": {"api\n": GOOD}}, r"\['POLICIES'\]\['api\\n'\]: policy name",
                 "E002", id="policy-newline"),
]  # fmt: skip

# Flask and FastAPI only: the storage keys. Timeouts the OS refuses to arm would raise
# OverflowError, not a store error, on every request.
HOSTILE_STORAGE = [
    pytest.param({"SOCKET_TIMEOUT": 1e308}, r"\['SOCKET_TIMEOUT'\]: .* <= 300", id="socket-1e308"),
    pytest.param({"POOL_TIMEOUT": 1e308}, r"\['POOL_TIMEOUT'\]: .* <= 300", id="pool-1e308"),
    pytest.param(
        {"STORAGE_URL": "foo://bar"},
        r"\['STORAGE_URL'\]: 'foo://bar' is not a store URL",
        id="foo-url",
    ),
]


# --- Property tests: random settings, of which the accepted ones must never give a 500 ---

# Values past every bound, and any float at all; each number below is one of these about
# one time in twenty, and a valid value otherwise.
hostile_numbers = st.one_of(
    st.sampled_from([0, 0.5, 1e-320, 1e15, MAX_HEADER_INT + 1, 1e308, math.inf, math.nan,
                     -1, 10**400, "5", None, True]),
    st.floats(),
)  # fmt: skip


Strategy = st.SearchStrategy[Any]


def sometimes(valid: Strategy, hostile: Strategy) -> Strategy:
    """``hostile`` about one time in twenty, ``valid`` otherwise."""
    return st.integers(0, 19).flatmap(lambda n: hostile if n == 0 else valid)


def sometimes_hostile(valid: Strategy) -> Strategy:
    return sometimes(valid, hostile_numbers)


capacities = sometimes_hostile(
    st.one_of(
        st.floats(min_value=1, max_value=1e6),
        st.integers(min_value=1, max_value=10**6),
        st.sampled_from([1, 3, 5, MAX_HEADER_INT]),
    )
)
rates = sometimes_hostile(
    st.one_of(
        st.floats(min_value=1e-6, max_value=1e12),
        st.floats(min_value=1e-3, max_value=10),
        st.sampled_from([1e-6, 1.0, 1e9]),
    )
)
costs = sometimes_hostile(st.one_of(st.floats(min_value=0, max_value=5), st.sampled_from([0, 1])))
bucket = st.fixed_dictionaries({"capacity": capacities, "refill_rate": rates})
policy = st.one_of(
    bucket,
    st.builds(lambda b, cost: {**b, "cost": cost}, bucket, costs),
    st.fixed_dictionaries({"buckets": st.lists(bucket, min_size=1, max_size=3)}),
)
settings_dicts = st.fixed_dictionaries(
    # the two policies the test apps' routes name, sometimes another, sometimes a bad name
    {"POLICIES": st.dictionaries(
        sometimes(st.just("other"), st.sampled_from(["api\n", "a b"])), policy, max_size=1
    ).flatmap(lambda extra: st.fixed_dictionaries(
        {**{name: st.just(value) for name, value in extra.items()},
         "default": policy, "upload": policy}))},
    optional={
        "KEY_PREFIX": sometimes(st.sampled_from(["rl", "prop.x-1"]),
                                st.sampled_from(["rl\n", "a:b", ""])),
        "ON_STORE_ERROR": sometimes(st.sampled_from(FAILURE_MODES), st.just("open")),
        "RETRY_INTERVAL": sometimes_hostile(st.floats(min_value=0, max_value=300)),
        "TRUSTED_PROXY_COUNT": sometimes(st.integers(0, 3), st.sampled_from([-1, "1"])),
        "LEGACY_HEADERS": sometimes(st.booleans(), st.just("yes")),
        "IETF_HEADERS": sometimes(st.booleans(), st.none()),
    },
)  # fmt: skip
# What a hostile client puts in X-Forwarded-For (header-safe text: a test client refuses
# control characters before the app could see them).
forwarded = st.one_of(
    st.none(),
    st.sampled_from(["203.0.113.7", "::ffff:1.2.3.4, 10.0.0.1", "x" * 8000, " , ,"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
)
PROPERTY_EXAMPLES = 80


def check_headers(status: int, headers: Mapping[str, str]) -> None:
    """Only 200 or 429, and every number a rate-limit header carries is an integer of at
    most 15 digits (what a Structured-Fields integer allows)."""
    assert status in (200, 429), status
    for value in (headers.get(name) for name in _NUMERIC):
        if value is not None:
            assert value.isdigit() and len(value) <= 15, value
    for name in ("RateLimit", "RateLimit-Policy"):
        for number in re.findall(r";\w=([^;]*)", headers.get(name, "")):
            assert number.isdigit() and len(number) <= 15, headers[name]


_NUMERIC = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After")
# Up to 8 requests: which of the two limited routes (policy "default" or "upload", each
# at its policy's own cost) and what X-Forwarded-For the client sends.
visits = st.lists(st.tuples(st.sampled_from([0, 1]), forwarded), min_size=1, max_size=8)


def with_hostile_examples(**fixed: Any) -> Callable[[F], F]:
    """Replay every ``HOSTILE`` row (beside an ``upload`` policy the routes need) before
    the random examples, past the capacity and with a long X-Forwarded-For, so the
    property test always tries the values that used to pass and then fail per request."""

    def apply(test: F) -> F:
        for row in HOSTILE:
            raw = dict(row.values[0])
            if isinstance(raw.get("POLICIES", {}), dict):
                raw["POLICIES"] = {"default": GOOD, "upload": GOOD, **raw.get("POLICIES", {})}
            requests = [(0, None)] * 7 + [(1, "x" * 8000)]
            test = example(raw=raw, requests=requests, **fixed)(test)
        return test

    return apply
