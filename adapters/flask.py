"""Flask extension: ``RateLimiter(app=None, **overrides)`` + ``init_app(app)``.

Settings come from ``app.config["RATELIMIT"]`` (the Django dict shape plus the storage
keys of ``ratelimit_app.core.stores.from_url``); keyword overrides given to the constructor win
over ``app.config``. Everything an app needs at request time lives in
``app.extensions["ratelimit"]``, so one extension object can serve several apps.

Views choose a policy with ``@limiter.limit("default", cost=3)``; ``DEFAULT_POLICY``
limits every other view unless it is ``@limiter.exempt``. The decorators only mark the
view function, so they work above or below ``@app.route``. A denial is a 429 and, with
``ON_STORE_ERROR="raise"``, a failed store a 503: both with the core's JSON bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask, Response, current_app, request

from ratelimit_app.core import (
    ConfigError,
    Decision,
    Proxies,
    Settings,
    StoreError,
    denial_body,
    parse_settings,
)
from ratelimit_app.core.events import BREACHES, Listener, hub, scoped
from ratelimit_app.core.headers import UNAVAILABLE_HEADERS, json_bytes, unavailable_body
from ratelimit_app.core.limits import SyncLimits, sync_limits
from ratelimit_app.core.policies import default_policy
from ratelimit_app.core.stores.from_url import (
    STORAGE_KEYS,
    make_sync_store,
    parse_storage_options,
)
from ratelimit_app.core.workers import warn_if_split

__all__ = ["RateLimiter", "default_identity", "metrics_route"]

WHERE = "app.config['RATELIMIT']"
_MARK = "_ratelimit"
_EXEMPT = "_ratelimit_exempt"
_DECISION = "ratelimit_app.decision"  # WSGI environ key: the decision, for after_request
F = TypeVar("F", bound=Callable[..., Any])
Identity = Callable[[], str]
_Limit = tuple[str, float | None]  # (policy, cost override)


def default_identity() -> str:
    """The client address, believing a proxy header only through the trusted proxies."""
    return _client_ip(request.environ, _state(current_app).limits.settings.proxies)


def _client_ip(environ: dict[str, Any], proxies: Proxies) -> str:
    forwarded = environ.get(proxies.environ_key) if proxies.reads_header else None
    return proxies.client(environ.get("REMOTE_ADDR"), forwarded)


def _default_identity_for(proxies: Proxies) -> Identity:
    """``default_identity`` with the app's proxy rule bound in: one context lookup less
    on every request."""
    return lambda: _client_ip(request.environ, proxies)


@dataclass(slots=True)
class _AppState:
    """Per-app state, kept in ``app.extensions["ratelimit"]``."""

    limits: SyncLimits
    default_policy: str | None
    identity: Identity
    exempt_endpoints: set[str] = field(default_factory=lambda: {"static"})
    by_endpoint: dict[str, _Limit | None] = field(default_factory=dict)


def _state(app: Flask) -> _AppState:
    return app.extensions["ratelimit"]  # type: ignore[no-any-return]


class RateLimiter:
    """The extension object; holds declarations, never per-app state."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        identity: Identity | None = None,
        on_breach: Listener | None = None,
        **overrides: Any,
    ) -> None:
        """``on_breach(event)`` is called for each request this app refuses (or, in
        shadow mode, would refuse), with the core ``Event``; it runs in the request."""
        self.identity = identity
        self.on_breach = on_breach
        self.overrides = overrides
        self._declared: list[tuple[str, str, float | None]] = []
        self._settings: list[Settings] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Parse and check everything now, so a bad value fails here, not at a request."""
        if "ratelimit" in app.extensions:
            raise RuntimeError(f"a rate limiter is already initialised on app {app.name!r}")
        raw = {**app.config.get("RATELIMIT", {}), **self.overrides}
        settings = parse_settings(raw, extra_keys=STORAGE_KEYS, where=WHERE)
        options = parse_storage_options(settings.extra, WHERE)
        default = default_policy(settings, WHERE)
        for view, policy, cost in self._declared:
            _check_limit(settings, view, policy, cost)
        store = make_sync_store(options)
        warn_if_split(options.is_memory, f"{WHERE}['STORAGE_URL'] = 'memory://'")
        state = _AppState(
            sync_limits(settings, store),
            default,
            self.identity or _default_identity_for(settings.proxies),
        )
        app.extensions["ratelimit"] = state
        if self.on_breach is not None:
            hub.subscribe(scoped(self.on_breach, state.limits.limiters.values, BREACHES))
        self._settings.append(settings)
        app.before_request(_before_request)
        app.after_request(_after_request)

    def limit(self, policy: str, cost: float | None = None) -> Callable[[F], F]:
        """Limit a view by ``policy``; ``cost`` overrides the policy's default cost."""

        def mark(view: F) -> F:
            name = getattr(view, "__qualname__", repr(view))
            self._declared.append((name, policy, cost))
            for settings in self._settings:
                _check_limit(settings, name, policy, cost)
            setattr(view, _MARK, (policy, cost))
            return view

        return mark

    def exempt(self, view: F) -> F:
        """Never limit this view, whatever ``DEFAULT_POLICY`` says."""
        setattr(view, _EXEMPT, True)
        return view


def _check_limit(settings: Settings, view: str, policy: str, cost: float | None) -> None:
    try:
        chosen = settings.policy(policy)
        if cost is not None:
            chosen.check_cost(cost)
    except ConfigError as exc:
        raise ConfigError(f"@limiter.limit on {view}: {exc}") from None


def _view_limit(state: _AppState, app: Flask, endpoint: str | None) -> _Limit | None:
    """The (policy, cost) that applies to ``endpoint``'s view, if any (cached per endpoint:
    views are registered before serving, and this runs on every request)."""
    if endpoint is None:
        return None
    try:
        return state.by_endpoint[endpoint]
    except KeyError:
        pass
    view = app.view_functions.get(endpoint)
    chosen: _Limit | None = None
    if endpoint not in state.exempt_endpoints and view is not None:
        if not getattr(view, _EXEMPT, False):
            chosen = getattr(view, _MARK, None)
            if chosen is None and state.default_policy is not None:
                chosen = (state.default_policy, None)
    state.by_endpoint[endpoint] = chosen
    return chosen


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    """The core's bytes as they are: ``jsonify`` would indent them in debug mode."""
    return Response(json_bytes(body), status, headers, mimetype="application/json")


def _before_request() -> Response | None:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    state = _state(app)
    chosen = _view_limit(state, app, request.endpoint)
    if chosen is None:
        return None
    name, cost = chosen
    limits = state.limits
    try:
        decision = limits.limiter(name).allow_request(state.identity(), limits.cost(name, cost))
    except StoreError:  # ON_STORE_ERROR = "raise": a 503 that says why, never a 500
        return _json(unavailable_body(), 503, dict(UNAVAILABLE_HEADERS))
    request.environ[_DECISION] = (name, decision)
    if decision.allowed:
        return None
    return _json(denial_body(decision), 429)


def _after_request(response: Response) -> Response:
    chosen: tuple[str, Decision] | None = request.environ.pop(_DECISION, None)
    if chosen is not None:
        # extend, not update: these names are ours, and update rescans the list per header
        response.headers.extend(_state(current_app).limits.headers(chosen[1], chosen[0]))
    return response


def metrics_route(app: Flask, path: str = "/metrics") -> None:
    """Serve the Prometheus metrics at ``path`` (never rate-limited itself)."""
    from ratelimit_app.core.metrics import render_metrics

    def ratelimit_metrics() -> Response:
        body, content_type = render_metrics()
        return Response(body, content_type=content_type)

    setattr(ratelimit_metrics, _EXEMPT, True)
    app.add_url_rule(path, "ratelimit_metrics", ratelimit_metrics)
