"""Decision -> HTTP headers, the 429 and 503 bodies and their bytes, in one place for
every framework.

Two header families: the widespread ``X-RateLimit-*`` trio and the IETF draft's
Structured-Fields pair (draft-ietf-httpapi-ratelimit-headers -10: ``RateLimit-Policy``
with ``q`` quota and ``w`` window, ``RateLimit`` with ``r`` remaining and ``t`` seconds
until the quota allows this request again).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from .bucket import Decision

__all__ = [
    "UNAVAILABLE_HEADERS",
    "denial_body",
    "json_bytes",
    "render_headers",
    "retry_after_header",
    "unavailable_body",
]

#: The headers of the 503 for ``ON_STORE_ERROR="raise"``: there is no decision to report,
#: so only the pause a client should take before trying again.
UNAVAILABLE_HEADERS = {"Retry-After": "1"}


def _ceil(seconds: float) -> int:
    return max(0, math.ceil(seconds))


def _quote(name: str) -> str:
    """An sf-string: policy names are validated to be plain, escape anyway."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@lru_cache(maxsize=256)
def _limit_value(capacity: float) -> str:
    return str(math.floor(capacity))


@lru_cache(maxsize=256)
def _policy_values(policy: str, capacity: float, rate: float) -> tuple[str, str]:
    """The quoted name and the ``RateLimit-Policy`` value: fixed per policy, so cached."""
    name = _quote(policy)
    return name, f"{name};q={math.floor(capacity)};w={_ceil(capacity / rate)}"


def retry_after_header(decision: Decision) -> str:
    """Whole seconds, rounded up and at least 1, so a client that waits is never early."""
    return str(max(1, math.ceil(decision.retry_after)))


def render_headers(
    decision: Decision,
    policy: str,
    *,
    legacy: bool = True,
    ietf: bool = True,
) -> dict[str, str]:
    headers: dict[str, str] = {}
    remaining = max(0, math.floor(decision.remaining))
    config = decision.config
    if legacy:
        headers["X-RateLimit-Limit"] = _limit_value(config.capacity)
        headers["X-RateLimit-Remaining"] = str(remaining)
        headers["X-RateLimit-Reset"] = str(_ceil(decision.reset_after))
    if ietf:
        name, policy_value = _policy_values(policy, config.capacity, config.refill_rate)
        headers["RateLimit-Policy"] = policy_value
        headers["RateLimit"] = f"{name};r={remaining};t={_ceil(decision.next_after)}"
    if not decision.allowed:
        headers["Retry-After"] = retry_after_header(decision)
    return headers


def denial_body(decision: Decision) -> dict[str, Any]:
    """The JSON body of a 429, identical in Django, Flask and FastAPI."""
    wait = max(1, math.ceil(decision.retry_after))
    return {
        "detail": f"Request was throttled. Expected available in {wait} second"
        + ("" if wait == 1 else "s")
        + ".",
        "retry_after": decision.retry_after,
    }


def unavailable_body() -> dict[str, Any]:
    """The JSON body of the 503 that ``ON_STORE_ERROR="raise"`` becomes in a request: the
    shape of a denial, so a client reads both the same way."""
    return {"detail": "Rate limiting is temporarily unavailable.", "retry_after": 1.0}


def json_bytes(body: Mapping[str, Any]) -> bytes:
    """A body as every integration sends it: compact separators (as DRF and Starlette
    write JSON; Django's and Flask's debug defaults would differ), UTF-8, no NaN."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
