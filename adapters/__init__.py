"""Thin framework glue over ``ratelimit_app.core``, imported as ``ratelimit_app.adapters``.

``from ratelimit_app.adapters.flask import RateLimiter`` and
``from ratelimit_app.adapters.fastapi import RateLimit, RateLimiter``: each module imports
its own framework only, so importing this package imports neither.
"""
