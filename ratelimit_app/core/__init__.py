"""Framework-free token-bucket rate limiting: arithmetic, limiters and stores."""

from .bucket import BucketState, Decision
from .clients import Proxies, client_ip
from .config import ConfigError, Problem, RateLimitConfig
from .failure import FAILURE_MODES, StoreFailureHandler
from .headers import denial_body, render_headers, retry_after_header
from .keys import build_key, safe_identity
from .limiter import AsyncTokenBucketRateLimiter, TokenBucketRateLimiter
from .policies import (
    Policy,
    Settings,
    make_async_limiters,
    make_limiters,
    parse_settings,
    settings_errors,
)
from .stores.base import AsyncStore, StoreError, SyncStore
from .stores.memory import AsyncMemoryStore, MemoryStore
from .stores.redis import AsyncRedisStore, RedisStore
from .waiting import RateLimitTimeout

__all__ = [
    "FAILURE_MODES",
    "AsyncMemoryStore",
    "AsyncRedisStore",
    "AsyncStore",
    "AsyncTokenBucketRateLimiter",
    "BucketState",
    "ConfigError",
    "Decision",
    "MemoryStore",
    "Policy",
    "Problem",
    "Proxies",
    "RateLimitConfig",
    "RateLimitTimeout",
    "RedisStore",
    "Settings",
    "StoreError",
    "StoreFailureHandler",
    "SyncStore",
    "TokenBucketRateLimiter",
    "build_key",
    "client_ip",
    "denial_body",
    "make_async_limiters",
    "make_limiters",
    "parse_settings",
    "render_headers",
    "retry_after_header",
    "safe_identity",
    "settings_errors",
]
