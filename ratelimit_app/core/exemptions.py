"""Requests that cost nothing: exempt clients, CORS preflights, methods a view lacks.

``EXEMPT = {"staff": True, "superusers": True, "ips": ["10.0.0.0/8", "2001:db8::/32"]}``
in the settings, and an ``exempt_when`` callable of the request on any view, decide from
plain facts (the user's flags, the client's address) that every framework supplies the
same way. An exempt request is not charged and gets no rate-limit headers. A CORS
preflight (``OPTIONS`` with ``Access-Control-Request-Method``) and a request whose method
the view does not implement are free too: they never reach the view's work.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .clients import IPNetwork, address_in, check_networks
from .config import ConfigError, Problem
from .request_keys import RequestFacts

__all__ = ["EXEMPT_KEYS", "Exemptions", "check_exempt", "is_preflight"]

EXEMPT_KEYS = frozenset({"staff", "superusers", "ips"})
PREFLIGHT_HEADER = "Access-Control-Request-Method"


def is_preflight(method: str, request_method_header: str | None) -> bool:
    """A CORS preflight: the browser asks before it sends the real request."""
    return method == "OPTIONS" and bool(request_method_header)


@dataclass(frozen=True, slots=True)
class Exemptions:
    """The settings' ``EXEMPT`` rules; ``exempt`` answers for one request."""

    staff: bool = False
    superusers: bool = False
    networks: tuple[IPNetwork, ...] = ()

    @property
    def reads_user(self) -> bool:
        return self.staff or self.superusers

    @property
    def active(self) -> bool:
        """Whether any rule is set (else no request need be looked at)."""
        return self.reads_user or bool(self.networks)

    def exempt(self, facts: RequestFacts) -> bool:
        if self.reads_user:
            user = facts.user()
            if user is not None and getattr(user, "is_authenticated", True):
                if self.superusers and getattr(user, "is_superuser", False) is True:
                    return True
                if self.staff and getattr(user, "is_staff", False) is True:
                    return True
        return bool(self.networks) and address_in(facts.ip(), self.networks)


NO_EXEMPTIONS = Exemptions()


def check_exempt(value: Any) -> Exemptions:
    """``EXEMPT``: a dict of ``staff`` / ``superusers`` (bools) and ``ips`` (networks)."""
    if not isinstance(value, Mapping) or not set(value) <= EXEMPT_KEYS:
        raise ConfigError(
            f"must be a dict with keys among {sorted(EXEMPT_KEYS)}, got {value!r}",
            kind=Problem.EXEMPT,
        )
    for flag in ("staff", "superusers"):
        if not isinstance(value.get(flag, False), bool):
            raise ConfigError(
                f"[{flag!r}] must be True or False, got {value[flag]!r}", kind=Problem.EXEMPT
            )
    try:
        networks = check_networks(value.get("ips", []), kind=Problem.EXEMPT)
    except ConfigError as exc:
        raise exc.at("['ips']") from None
    return Exemptions(value.get("staff", False), value.get("superusers", False), networks)


def exempt_by(when: Callable[..., Any] | None, facts: RequestFacts) -> bool:
    """``exempt_when(request)``'s answer, for sync integrations."""
    return when is not None and bool(facts.call(when))


async def aexempt_by(when: Callable[..., Any] | None, facts: RequestFacts) -> bool:
    """The async twin: ``exempt_when`` may answer with an awaitable."""
    if when is None:
        return False
    answer = facts.call(when)
    return bool(await answer if inspect.isawaitable(answer) else answer)
