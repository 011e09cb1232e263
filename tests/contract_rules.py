"""Callables the contract table names by dotted path: each reads the request of whichever
framework calls it (Django and DRF pass their request, Starlette its connection, Flask
nothing: the callable reads ``flask.request``)."""

from __future__ import annotations

from typing import Any


def _headers(request: Any = None) -> Any:
    if request is None:
        from flask import request as flask_request

        return flask_request.headers
    return request.headers


def client(request: Any = None) -> str | None:
    """A key: the caller's own client name, None when it sends none."""
    return _headers(request).get("X-Client")  # type: ignore[no-any-return]


def plan(request: Any = None) -> str | None:
    """A tier resolver: the plan the request claims (a real one would read the user)."""
    return _headers(request).get("X-Plan")  # type: ignore[no-any-return]


def internal(request: Any = None) -> bool:
    """An ``exempt_when``."""
    return _headers(request).get("X-Internal") == "yes"  # type: ignore[no-any-return]


def not_server_error(response: Any) -> bool:
    """A ``deduct_when``: a response every framework gives ``status_code``."""
    return int(response.status_code) < 500


not_callable = 42
