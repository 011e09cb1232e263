"""Thin framework glue over ``ratelimit_app.core``: ``adapters.flask``, ``adapters.fastapi``.

Each adapter imports its own framework only, so importing this package imports neither.
"""
