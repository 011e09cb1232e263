"""The limiter's own HTTP answers, a 429 and a 503 with the core's JSON body, and how
they are documented in an app's OpenAPI schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException, Request, Response

from ratelimit_app.core import Decision, Settings, denial_body
from ratelimit_app.core.headers import UNAVAILABLE_HEADERS, json_bytes, unavailable_body

__all__ = [
    "Answer",
    "RateLimitExceeded",
    "RateLimitUnavailable",
    "documented",
    "json_response",
    "rate_limit_exceeded_handler",
]


class Answer(HTTPException):
    """An answer the limiter gives instead of the endpoint, with the core's JSON body."""

    def __init__(self, status: int, body: dict[str, Any], headers: Mapping[str, str]) -> None:
        super().__init__(status, detail=body["detail"], headers=dict(headers))
        self.body = body

    def response(self) -> Response:
        return json_response(self.body, self.status_code, self.headers)


class RateLimitExceeded(Answer):
    """A 429 carrying its decision."""

    def __init__(self, decision: Decision, headers: Mapping[str, str]) -> None:
        super().__init__(429, denial_body(decision), headers)
        self.decision = decision


class RateLimitUnavailable(Answer):
    """``ON_STORE_ERROR="raise"`` and the store failed: a 503, never a 500."""

    def __init__(self) -> None:
        super().__init__(503, unavailable_body(), UNAVAILABLE_HEADERS)


def json_response(
    body: dict[str, Any], status: int, headers: Mapping[str, str] | None
) -> Response:
    """The core's bytes as they are, so every integration sends the same body."""
    return Response(json_bytes(body), status, headers, media_type="application/json")


async def rate_limit_exceeded_handler(request: Request, exc: Exception) -> Response:
    """Registered by ``install`` for the limiter's 429 and 503."""
    if not isinstance(exc, Answer):  # registered for these classes only
        raise exc
    return exc.response()


_WAIT = {"description": "Seconds to wait, rounded up", "schema": {"type": "integer", "minimum": 1}}
_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["detail", "retry_after"],
            "properties": {
                "detail": {"type": "string"},
                "retry_after": {"type": "number", "minimum": 0},
            },
        }
    }
}


def documented(settings: Settings) -> dict[int | str, dict[str, Any]]:
    """The answers a limited route adds to its OpenAPI responses."""
    answers: dict[int | str, dict[str, Any]] = {
        429: {
            "description": "Rate limited: the caller's bucket holds less than the request "
            "costs. retry_after is the exact wait in seconds.",
            "headers": {"Retry-After": _WAIT},
            "content": _BODY,
        }
    }
    if settings.on_store_error == "raise":
        answers[503] = {
            "description": 'The rate-limit store is unavailable (ON_STORE_ERROR = "raise").',
            "headers": {"Retry-After": _WAIT},
            "content": _BODY,
        }
    return answers
