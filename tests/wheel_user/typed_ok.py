"""A user's module that ``mypy --strict`` must accept against the installed wheel."""

from __future__ import annotations

from ratelimit_app.adapters.fastapi import RateLimit, RateLimiter
from ratelimit_app.adapters.flask import RateLimiter as FlaskLimiter

from ratelimit_app.core import Decision, MemoryStore, RateLimitConfig, TokenBucketRateLimiter

limiter = TokenBucketRateLimiter(RateLimitConfig(capacity=5, refill_rate=1.0), MemoryStore())
decision: Decision = limiter.allow_request("client-42", cost=3)
remaining: float = decision.remaining
flask_limiter = FlaskLimiter(KEY_PREFIX="app")
fastapi_limiter = RateLimiter({"POLICIES": {"default": {"capacity": 5, "refill_rate": 1.0}}})
upload = RateLimit("default", cost=3)
