"""Settings that look like numbers and names but would defeat the limiter at request time.

Each framework must refuse every one of them at start-up, with a message naming the
setting: Django when it starts (under gunicorn too, ``tests/app/test_startup.py``),
Flask at ``init_app`` and FastAPI when ``RateLimiter`` is built. Each row is the common
settings dict, a regex the message must match (it names the setting) and the id of
Django's check for that kind of problem.
"""

from __future__ import annotations

import math

import pytest

GOOD = {"capacity": 5, "refill_rate": 1.0}


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
    pytest.param({"STORAGE_URL": "foo://bar"}, r"\['STORAGE_URL'\]: must be", id="foo-url"),
]
