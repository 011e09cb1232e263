"""System checks: every wrong ``RATELIMIT`` setting fails ``manage.py check``.

Each problem has its own stable id (never renumbered) and a hint saying what to write.
The settings go through the core's own parser, which collects every problem with its
kind (``core.config.Problem``); each kind maps to one id here, so one run reports every
mistake, not only the first one ``parse_settings`` would stop at. The same problems
stop Django when the app is ready (``refuse_bad_settings``), since servers never run
checks; the URLconf ones (``check_views``) are left to ``manage.py check``.

======================  ==========================================================
id                      problem
======================  ==========================================================
ratelimit.E001          RATELIMIT is not a dict, or has a key we do not know
ratelimit.E002          POLICIES is malformed (not a dict, bad name, bad/missing key)
ratelimit.E003          a policy's capacity or refill_rate is out of range (see the hint)
ratelimit.E004          a policy's or view's cost is invalid or above the capacity
ratelimit.E005          CACHE is not an alias in CACHES
ratelimit.E006          ON_STORE_ERROR is not fallback/allow/deny/raise
ratelimit.E007          TRUSTED_PROXY_COUNT is not an int from 0 to 32
ratelimit.E008          KEY_PREFIX is not 1-64 plain characters
ratelimit.E009          RETRY_INTERVAL is not a number of seconds from 0 to 300
ratelimit.E010          LEGACY_HEADERS, IETF_HEADERS, METRICS or COALESCE is not a bool
ratelimit.E011          a view or decorator names a policy that is not configured
ratelimit.E020          MODE or a policy's "mode" is not "enforce" or "shadow"
ratelimit.E021          METRICS is True but prometheus_client is not installed
ratelimit.E030          TRUSTED_PROXIES is not a list of networks, or is set beside
                        TRUSTED_PROXY_COUNT
ratelimit.E031          PROXY_HEADER is not "X-Forwarded-For" or "Forwarded"
ratelimit.E032          IPV6_PREFIX is not an int from 32 to 128
ratelimit.E033          STORE is not a store URL, or is set beside CACHE
ratelimit.E050          a policy's or view's key is unknown, names a bad header or query
                        parameter, or a dotted path that does not import
ratelimit.E051          tiers are malformed, the tier resolver does not import, or
                        default_tier is not one of the tiers
ratelimit.E052          EXEMPT is malformed (a CIDR that does not parse) or an
                        exempt_when is not callable
ratelimit.E053          deduct_when is not callable or charge_on_status does not parse
ratelimit.E054          EXEMPT_PATHS is not a list of path prefixes
ratelimit.W001          the cache backend cannot make decisions atomic across processes
ratelimit.W002          (--deploy) local-memory buckets are per process
======================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings as django_settings
from django.core import checks
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured

from .cache_store import backend_kind
from .conf import DEFAULT_CACHE, EXTRA_KEYS, check_global, raw_settings, store_options
from .core.config import ConfigError, Problem
from .core.policies import COMMON_KEYS, parse_settings, settings_errors
from .view_limits import limited_views, view_rule_errors

__all__ = [
    "check_cache",
    "check_deploy_cache",
    "check_settings",
    "check_views",
    "refuse_bad_settings",
    "register",
]

_HINTS = {
    "E001": "Allowed keys: CACHE, " + ", ".join(sorted(COMMON_KEYS)) + ".",
    "E002": 'Write POLICIES = {"name": {"capacity": 5, "refill_rate": 1.0, "cost": 1}}.',
    "E003": "capacity (tokens) is a number from 1 to 999999999999999 and refill_rate "
    "(tokens per second) a number > 0 with capacity / refill_rate at most 999999999999999 "
    "seconds, so every header value is a finite integer.",
    "E004": "A cost is a number >= 0 and at most the policy's capacity.",
    "E005": "Set RATELIMIT['CACHE'] to one of the aliases in CACHES.",
    "E006": "Use one of 'fallback' (default), 'allow', 'deny', 'raise'.",
    "E007": "The number of reverse proxies in front of the app (at most 32); 0 if clients "
    "connect directly.",
    "E008": "Letters, digits, '_', '.', '-'; it starts every cache key.",
    "E009": "Seconds to wait before retrying a failed store, from 0 to 300, e.g. 1.0.",
    "E010": "True or False.",
    "E011": "Add the policy to RATELIMIT['POLICIES'] or fix the name in the view.",
    "E020": '"enforce" refuses denied requests; "shadow" only reports them.',
    "E021": "pip install 'ratelimit-app[prometheus]', or set METRICS to False.",
    "E030": "The networks of your proxies, e.g. ['10.0.0.0/8', '2001:db8::/32']; "
    "use either TRUSTED_PROXIES or TRUSTED_PROXY_COUNT.",
    "E031": "'X-Forwarded-For' (default) or 'Forwarded' (RFC 7239): the header your "
    "proxies write.",
    "E032": "64 (default) groups each IPv6 /64 into one bucket; 128 turns grouping off.",
    "E033": "A URL such as 'redis://host:6379/0', 'redis+sentinel://h1:26379,h2:26379/"
    "mymaster/0' or 'redis+cluster://h1:7000,h2:7000'; set STORE or CACHE, not both.",
    "E050": "A key is 'ip', 'user', 'user_or_ip', 'header:X-Api-Key', 'query:api_key', "
    "a dotted path to a callable of the request, or a list of these tried in order.",
    "E051": 'Write "tiers": {"free": {"capacity": 5, "refill_rate": 1}, "pro": {...}}, '
    '"tier": "myapp.plans.tier_of" (a callable of the request) and optionally '
    '"default_tier": "free".',
    "E052": 'Write EXEMPT = {"staff": True, "superusers": True, "ips": ["10.0.0.0/8"]}; '
    "exempt_when is a callable of the request or a dotted path to one.",
    "E053": "deduct_when is a callable of the response (or a dotted path to one); "
    "charge_on_status reads like 'not 5xx', '2xx' or '2xx, 301'.",
    "E054": "A list of path prefixes the global DEFAULT_POLICY leaves alone, such as "
    "['/admin/', '/healthz'].",
}
# Each kind of problem the settings parser reports has one stable id.
_IDS = {
    Problem.SETTINGS: "E001",
    Problem.POLICY: "E002",
    Problem.BUCKET: "E003",
    Problem.COST: "E004",
    Problem.CACHE: "E005",
    Problem.FAILURE_MODE: "E006",
    Problem.PROXIES: "E007",
    Problem.KEY_PREFIX: "E008",
    Problem.RETRY_INTERVAL: "E009",
    Problem.FLAG: "E010",
    Problem.UNKNOWN_POLICY: "E011",
    Problem.MODE: "E020",
    Problem.METRICS: "E021",
    Problem.PROXY_NETWORKS: "E030",
    Problem.PROXY_HEADER: "E031",
    Problem.IPV6_PREFIX: "E032",
    Problem.STORE: "E033",
    Problem.STORAGE: "E033",
    Problem.KEY: "E050",
    Problem.TIERS: "E051",
    Problem.EXEMPT: "E052",
    Problem.CHARGE: "E053",
    Problem.GLOBAL: "E054",
}


def _error(code: str, message: str) -> checks.Error:
    return checks.Error(message, hint=_HINTS[code], id=f"ratelimit.{code}")


def _reported(problem: ConfigError) -> checks.Error:
    message = str(problem)
    return _error(
        _IDS.get(problem.kind, "E001"), message if message.endswith(".") else message + "."
    )


def check_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    """Every problem the settings parser finds, each under its own id, and then those of
    the middleware's global limit (DEFAULT_POLICY, EXEMPT_PATHS)."""
    raw = raw_settings()
    problems = settings_errors(raw, extra_keys=EXTRA_KEYS)
    if not problems:
        try:
            check_global(parse_settings(raw, extra_keys=EXTRA_KEYS))
        except ConfigError as exc:
            problems.append(exc)
    return [_reported(problem) for problem in problems]


def _store_errors(raw: Any) -> list[checks.CheckMessage] | None:
    """Problems of a ``STORE`` URL (None when the buckets are in a cache)."""
    try:
        parsed = parse_settings(raw, extra_keys=EXTRA_KEYS)
        if store_options(parsed) is None:
            return None
    except ConfigError as exc:
        return [_reported(exc)] if exc.kind is Problem.STORE else []
    return []


def _alias_error() -> tuple[str, checks.Error | None]:
    """The cache alias the settings name, and the error if CACHES has no such alias."""
    raw = raw_settings()
    alias = raw.get("CACHE", DEFAULT_CACHE) if isinstance(raw, Mapping) else DEFAULT_CACHE
    if isinstance(alias, str) and alias in django_settings.CACHES:
        return alias, None
    known = sorted(django_settings.CACHES)
    return alias, _error("E005", f"RATELIMIT['CACHE'] = {alias!r} is not in CACHES {known}.")


def check_cache(**kwargs: Any) -> list[checks.CheckMessage]:
    store = _store_errors(raw_settings())
    if store is not None:
        return store
    alias, error = _alias_error()
    if error is not None:
        return [error]
    kind = backend_kind(caches[alias])
    if kind != "other":
        return []
    backend = django_settings.CACHES[alias].get("BACKEND")
    return [
        checks.Warning(
            f"Cache {alias!r} ({backend}) has no atomic operation ratelimit_app can use: "
            "buckets are read and written separately, so concurrent processes can "
            "admit more requests than the limit.",
            hint="Use django-redis or django.core.cache.backends.redis.RedisCache "
            "(one Lua script per decision), or LocMemCache for a single process.",
            id="ratelimit.W001",
        )
    ]


def check_deploy_cache(**kwargs: Any) -> list[checks.CheckMessage]:
    """Only with ``check --deploy``: locmem is right for development and one process."""
    raw = raw_settings()
    if _store_errors(raw) is not None:
        return []
    alias = raw.get("CACHE", DEFAULT_CACHE) if isinstance(raw, Mapping) else DEFAULT_CACHE
    if alias not in django_settings.CACHES or backend_kind(caches[alias]) != "locmem":
        return []
    return [
        checks.Warning(
            f"Cache {alias!r} is local memory: each server process keeps its own buckets, "
            "so N worker processes admit up to N times the configured limit.",
            hint="Point RATELIMIT['CACHE'] at a Redis cache when running several processes.",
            id="ratelimit.W002",
        )
    ]


def check_views(**kwargs: Any) -> list[checks.CheckMessage]:
    """Policies and costs named by views reachable from the URLconf."""
    try:
        parsed = parse_settings(raw_settings(), extra_keys=EXTRA_KEYS)
    except ConfigError:
        return []  # already reported by check_settings
    errors: list[checks.CheckMessage] = []
    for where, policy_name, costs in limited_views():
        policy = parsed.policies.get(policy_name)
        if policy is None:
            known = sorted(parsed.policies)
            errors.append(
                _error("E011", f"{where} uses rate-limit policy {policy_name!r}; have {known}.")
            )
            continue
        for cost in costs:
            try:
                policy.check_cost(cost)
            except ConfigError as exc:
                errors.append(_error("E004", f"{where} (policy {policy_name!r}): {exc}"))
    return errors + [_reported(problem) for problem in view_rule_errors()]


def refuse_bad_settings() -> None:
    """Raise ``ImproperlyConfigured`` listing every settings problem, with its id and hint.

    Called when the app is ready, so every way of starting Django (gunicorn, uvicorn,
    runserver, any management command) stops before serving with a bad ``RATELIMIT``,
    instead of answering 500 on every limited request. It uses the same parser and ids
    as ``check_settings``; problems that need the URLconf (``check_views``) are left to
    ``manage.py check``, because importing the URLconf while apps are still getting ready
    could freeze the admin's URLs before its models are registered.
    """
    errors: list[checks.CheckMessage] = list(check_settings())
    store_errors = _store_errors(raw_settings())
    alias_error = _alias_error()[1] if store_errors is None else None
    errors += store_errors or ([alias_error] if alias_error is not None else [])
    if errors:
        found = "\n".join(f"  ({e.id}) {e.msg} HINT: {e.hint}" for e in errors)
        raise ImproperlyConfigured(
            f"settings.RATELIMIT has {len(errors)} problem(s); Django will not start "
            f"until they are fixed:\n{found}"
        )


def register() -> None:
    checks.register(check_settings, "ratelimit")
    checks.register(check_cache, "ratelimit", "caches")
    checks.register(check_deploy_cache, "ratelimit", "caches", deploy=True)
    checks.register(check_views, "ratelimit", "urls")
