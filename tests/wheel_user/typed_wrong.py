"""A user's mistake ``mypy --strict`` must catch: the wheel's types are seen, not Any."""

from __future__ import annotations

from ratelimit_app.core import MemoryStore, RateLimitConfig, TokenBucketRateLimiter

limiter = TokenBucketRateLimiter(RateLimitConfig(capacity=5, refill_rate=1.0), MemoryStore())
allowed: str = limiter.allow_request("client-42")
