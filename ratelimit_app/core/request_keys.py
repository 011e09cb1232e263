"""Which bucket a request is charged to: its key and its tier, the same in every framework.

A policy (or one view) names its key: ``ip``, ``user``, ``user_or_ip``,
``header:<Name>``, ``query:<name>``, a dotted path to a callable of the request, or the
callable itself; alone, or a list tried in order. Each framework hands the core a
``RequestFacts`` (how to read *its* request); everything else is decided here.

Every identity starts with its kind (``ip:``, ``user:``, ``header:``, ``query:``,
``key:`` for a callable's answer), so no value a client sends as a header can name
another kind's bucket, and every identity goes through ``safe_identity`` like any other:
a long or odd value becomes a digest, never a key segment. A key that is missing (no such
header, an anonymous user, a callable answering None) is never a bucket shared by
everyone: the next key of the list is tried, or the policy does not limit the request
(``"on_missing_key": "skip"`` stops at the first missing one).

A tiered policy keeps one set of buckets per tier; ``tier`` (a callable of the request)
names the tier, and an answer of None, or a name the policy does not have, means the
default tier. The tier is part of the bucket's key, ``<prefix>:<policy>:<tier>:<identity>``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .config import ConfigError, Problem

__all__ = [
    "BUILT_IN_KEYS",
    "MISSING_KEY",
    "KeyRule",
    "RequestFacts",
    "TierRule",
    "check_key",
    "import_callable",
    "own_key",
    "user_id",
]

logger = logging.getLogger("ratelimit_app")

BUILT_IN_KEYS = ("ip", "user", "user_or_ip")
#: ``next``: try the next key of the list; ``skip``: the policy does not limit the request.
MISSING_KEY = ("next", "skip")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")  # an RFC 9110 token
_QUERY_NAME = re.compile(r"[A-Za-z0-9_.~\[\]-]{1,64}")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_WARNED_TIERS: set[str] = set()  # unknown tier names already logged (at most 100)


class RequestFacts(Protocol):
    """What the core reads from one framework's request."""

    def ip(self) -> str:
        """The client address, as ``Proxies.client`` reads it."""
        ...

    def user(self) -> Any:
        """The user object (Django's ``request.user``, ...), or None."""
        ...

    def header(self, name: str) -> str | None: ...

    def query(self, name: str) -> str | None: ...

    def call(self, func: Callable[..., Any]) -> Any:
        """``func(request)``; in Flask, whose callables read ``flask.request``, ``func()``."""
        ...


def user_id(user: Any) -> str | None:
    """An authenticated user's ``pk`` (Django), ``id`` or ``username``; None for nobody."""
    if user is None or not getattr(user, "is_authenticated", True):
        return None
    for attribute in ("pk", "id", "username"):
        value = getattr(user, attribute, None)
        if value is not None and value != "":
            return str(value)
    return None  # an authenticated user with no id: treated as nobody


def _ip(facts: RequestFacts) -> str:
    return "ip:" + facts.ip()


def _user(facts: RequestFacts) -> str | None:
    found = user_id(facts.user())
    return None if found is None else "user:" + found


def _user_or_ip(facts: RequestFacts) -> str:
    return _user(facts) or _ip(facts)


class _Header:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, facts: RequestFacts) -> str | None:
        value = facts.header(self.name)
        return "header:" + value if value else None


class _Query(_Header):
    def __call__(self, facts: RequestFacts) -> str | None:
        value = facts.query(self.name)
        return "query:" + value if value else None


class _Call:
    """A callable key: its answer may be awaitable (FastAPI), so it is named after."""

    __slots__ = ("func", "prefix")

    def __init__(self, func: Callable[..., Any], prefix: str = "key:") -> None:
        self.func = func
        self.prefix = prefix

    def __call__(self, facts: RequestFacts) -> Any:
        return facts.call(self.func)

    def named(self, value: Any) -> str | None:
        return None if value is None or value == "" else f"{self.prefix}{value}"


def import_callable(value: Any, what: str, kind: Problem) -> Callable[..., Any]:
    """``value`` if callable, else the callable its dotted path names (imported now, at
    start-up, so a typo fails there and not at the first request)."""
    if callable(value):
        return value  # type: ignore[no-any-return]
    if not isinstance(value, str) or not _DOTTED.fullmatch(value):
        raise ConfigError(f"{what} must be a callable or a dotted path, got {value!r}", kind=kind)
    module, _, name = value.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what} {value!r} does not import: {exc}", kind=kind) from None
    if not callable(found):
        raise ConfigError(f"{what} {value!r} is not callable", kind=kind)
    return found  # type: ignore[no-any-return]


def _reader(spec: Any) -> Callable[[RequestFacts], Any]:
    if callable(spec):
        return _Call(spec)
    built_in = {"ip": _ip, "user": _user, "user_or_ip": _user_or_ip}.get(spec)
    if built_in is not None:
        return built_in
    kind, sep, name = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if sep and kind == "header":
        if not _HEADER_NAME.fullmatch(name):
            raise ConfigError(f"{spec!r}: {name!r} is not a header name", kind=Problem.KEY)
        return _Header(name)
    if sep and kind == "query":
        if not _QUERY_NAME.fullmatch(name):
            raise ConfigError(f"{spec!r}: {name!r} is not a parameter name", kind=Problem.KEY)
        return _Query(name)
    if not sep and isinstance(spec, str) and "." in spec:
        return _Call(import_callable(spec, "key", Problem.KEY))
    raise ConfigError(
        f"unknown key {spec!r}: use one of {', '.join(BUILT_IN_KEYS)}, 'header:<Name>', "
        "'query:<name>', a dotted path or a callable of the request",
        kind=Problem.KEY,
    )


@dataclass(frozen=True, slots=True)
class KeyRule:
    """A key, or a list of keys tried in order, and what a missing one means."""

    readers: tuple[Callable[[RequestFacts], Any], ...]
    skip_missing: bool = False

    def identity(self, facts: RequestFacts) -> str | None:
        """The request's identity, or None: this policy does not limit it."""
        for read in self.readers:
            value: str | None = read(facts)
            if type(read) is _Call:
                value = read.named(value)
            if value is not None or self.skip_missing:
                return value
        return None

    async def aidentity(self, facts: RequestFacts) -> str | None:
        """The async twin: a callable key may answer with an awaitable."""
        for read in self.readers:
            value: str | None = read(facts)
            if type(read) is _Call:
                answer: Any = value
                value = read.named(await answer if inspect.isawaitable(answer) else answer)
            if value is not None or self.skip_missing:
                return value
        return None


def own_key(identity: Callable[..., Any] | None) -> KeyRule:
    """An integration's own identity function as a key, its answer used as it is; without
    one, the client address, unprefixed (the Flask and FastAPI default, as it always was)."""
    if identity is None:
        return KeyRule((_address,))
    return KeyRule((_Call(identity, prefix=""),))


def _address(facts: RequestFacts) -> str:
    return facts.ip()


def check_key(value: Any, on_missing: Any = "next") -> KeyRule:
    """A ``KeyRule`` from a key, a list of keys, and ``on_missing_key``."""
    if on_missing not in MISSING_KEY:
        raise ConfigError(
            f"on_missing_key must be one of {list(MISSING_KEY)}, got {on_missing!r}",
            kind=Problem.KEY,
        )
    specs = list(value) if isinstance(value, (list, tuple)) else [value]
    if not specs:
        raise ConfigError("key is an empty list: name at least one key", kind=Problem.KEY)
    return KeyRule(tuple(_reader(spec) for spec in specs), on_missing == "skip")


@dataclass(frozen=True, slots=True)
class TierRule:
    """A tiered policy's resolver and its tiers' names; ``default`` serves the rest."""

    resolve: Callable[..., Any]
    names: frozenset[str]
    default: str

    def pick(self, answer: Any) -> str:
        """The tier an answer names: itself if the policy has it, else the default."""
        if type(answer) is str and answer in self.names:
            return answer
        if answer is not None:
            _warn_unknown(answer, self)
        return self.default

    def tier(self, facts: RequestFacts) -> str:
        return self.pick(facts.call(self.resolve))

    async def atier(self, facts: RequestFacts) -> str:
        answer = facts.call(self.resolve)
        return self.pick(await answer if inspect.isawaitable(answer) else answer)


def _warn_unknown(answer: Any, rule: TierRule) -> None:
    """Once per name (and at most 100 names): a resolver answering a tier the policy does
    not have is a bug to fix, never a 500; the request gets the default tier meanwhile."""
    name = repr(answer)[:64]
    if name in _WARNED_TIERS or len(_WARNED_TIERS) >= 100:
        return
    _WARNED_TIERS.add(name)
    logger.warning(
        "rate-limit tier resolver answered %s, not one of %s: using the default tier %r",
        name, sorted(rule.names), rule.default,
    )  # fmt: skip


def tier_rule(resolver: Any, tiers: Mapping[str, Any], default: Any) -> TierRule:
    """Checked at start-up: the resolver imports, the default tier is one of ``tiers``."""
    resolve = import_callable(resolver, "tier", Problem.TIERS)
    if default not in tiers:
        raise ConfigError(
            f"default_tier {default!r} is not one of the tiers {sorted(tiers)}",
            kind=Problem.TIERS,
        )
    return TierRule(resolve, frozenset(tiers), str(default))
