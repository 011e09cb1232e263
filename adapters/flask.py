"""Flask extension: ``RateLimiter(app=None, **overrides)`` + ``init_app(app)``.

Settings come from ``app.config["RATELIMIT"]`` (the Django dict shape plus the storage
keys of ``ratelimit_app.core.stores.from_url``); keyword overrides given to the constructor win
over ``app.config``. Everything an app needs at request time lives in
``app.extensions["ratelimit"]``, so one extension object can serve several apps.

Views choose a policy with ``@limiter.limit("default", cost=3)`` (and optionally their
own ``key``, ``exempt_when``, ``deduct_when``, ``charge_on_status``: see
``ratelimit_app.core.request_keys`` and ``.outcomes``); ``DEFAULT_POLICY`` limits every
other view unless it is ``@limiter.exempt``. The decorators only mark the view function,
so they work above or below ``@app.route``. Callables of the request take no argument
and read ``flask.request``. ``user`` (a callable) gives the current user for the
``user`` keys and ``EXEMPT``'s staff/superusers (default: ``g.user``; with Flask-Login,
``user=lambda: flask_login.current_user``). A CORS preflight and Flask's
automatic ``OPTIONS`` cost nothing. A denial is a 429 and, with
``ON_STORE_ERROR="raise"``, a failed store a 503: both with the core's JSON bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, Unpack

from flask import Flask, Response, current_app, g, request

from ratelimit_app.core import (
    ConfigError,
    Proxies,
    Settings,
    StoreError,
    denial_body,
    parse_settings,
)
from ratelimit_app.core.events import BREACHES, Listener, hub, scoped
from ratelimit_app.core.exemptions import PREFLIGHT_HEADER, is_preflight
from ratelimit_app.core.headers import UNAVAILABLE_HEADERS, json_bytes, unavailable_body
from ratelimit_app.core.limits import SyncLimits, sync_limits
from ratelimit_app.core.policies import default_policy
from ratelimit_app.core.request_keys import KeyRule, own_key
from ratelimit_app.core.request_limits import Charge, Limit, Rules, bind, check, settle
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
_CHARGE = "ratelimit_app.charge"  # WSGI environ key: the decision, for after_request
F = TypeVar("F", bound=Callable[..., Any])
Identity = Callable[[], str]


def default_identity() -> str:
    """The client address, believing a proxy header only through the trusted proxies."""
    return _client_ip(request.environ, _state(current_app).limits.settings.proxies)


def _client_ip(environ: dict[str, Any], proxies: Proxies) -> str:
    forwarded = environ.get(proxies.environ_key) if proxies.reads_header else None
    return proxies.client(environ.get("REMOTE_ADDR"), forwarded)


def _default_user() -> Any:
    """``g.user``, where many apps keep it (pass ``user=`` for Flask-Login's)."""
    return g.get("user")


class FlaskFacts:
    """How the core reads ``flask.request`` (``core.request_keys.RequestFacts``)."""

    __slots__ = ("proxies", "user")

    def __init__(self, proxies: Proxies, user: Callable[[], Any]) -> None:
        self.proxies = proxies
        self.user = user

    def ip(self) -> str:
        return _client_ip(request.environ, self.proxies)

    def header(self, name: str) -> str | None:
        return request.headers.get(name)

    def query(self, name: str) -> str | None:
        return request.args.get(name)

    def call(self, func: Callable[..., Any]) -> Any:
        return func()


@dataclass(slots=True)
class _AppState:
    """Per-app state, kept in ``app.extensions["ratelimit"]``."""

    limits: SyncLimits
    default: Limit | None  # DEFAULT_POLICY, with the app's exempt_when
    key: KeyRule  # the app's identity, for limits that name no key
    facts: FlaskFacts
    exempt_endpoints: set[str] = field(default_factory=lambda: {"static"})
    by_endpoint: dict[str, Limit | None] = field(default_factory=dict)


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
        user: Callable[[], Any] | None = None,
        exempt_when: Callable[[], Any] | None = None,
        **overrides: Any,
    ) -> None:
        """``on_breach(event)`` is called for each request this app refuses (or, in
        shadow mode, would refuse), with the core ``Event``; it runs in the request.
        ``exempt_when()`` exempts requests from ``DEFAULT_POLICY``."""
        self.identity = identity
        self.on_breach = on_breach
        self.user = user or _default_user
        self.exempt_when = exempt_when
        self.overrides = overrides
        self._declared: list[tuple[str, Limit]] = []
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
        for view, limit in self._declared:
            _check_limit(settings, view, limit)
        store = make_sync_store(options)
        warn_if_split(options.is_memory, f"{WHERE}['STORAGE_URL'] = 'memory://'")
        state = _AppState(
            sync_limits(settings, store),
            None if default is None else Limit.of(default, exempt_when=self.exempt_when),
            own_key(self.identity),
            FlaskFacts(settings.proxies, self.user),
        )
        app.extensions["ratelimit"] = state
        if self.on_breach is not None:
            hub.subscribe(scoped(self.on_breach, state.limits.limiters.values, BREACHES))
        self._settings.append(settings)
        app.before_request(_before_request)
        app.after_request(_after_request)

    def limit(
        self, policy: str, cost: float | None = None, **rules: Unpack[Rules]
    ) -> Callable[[F], F]:
        """Limit a view by ``policy``; ``cost`` overrides the policy's default cost, and
        ``rules`` (``key``, ``exempt_when``, ...) the policy's (checked now)."""
        limit = Limit.of(policy, cost, **rules)

        def mark(view: F) -> F:
            name = getattr(view, "__qualname__", repr(view))
            self._declared.append((name, limit))
            for settings in self._settings:
                _check_limit(settings, name, limit)
            setattr(view, _MARK, limit)
            return view

        return mark

    def exempt(self, view: F) -> F:
        """Never limit this view, whatever ``DEFAULT_POLICY`` says."""
        setattr(view, _EXEMPT, True)
        return view


def _check_limit(settings: Settings, view: str, limit: Limit) -> None:
    try:
        chosen = settings.policy(limit.policy)
        if limit.cost is not None:
            chosen.check_cost(limit.cost)
    except ConfigError as exc:
        raise ConfigError(f"@limiter.limit on {view}: {exc}") from None


def _view_limit(state: _AppState, app: Flask, endpoint: str | None) -> Limit | None:
    """The limit that applies to ``endpoint``'s view, if any (cached per endpoint: views
    are registered before serving, and this runs on every request)."""
    if endpoint is None:
        return None
    try:
        return state.by_endpoint[endpoint]
    except KeyError:
        pass
    view = app.view_functions.get(endpoint)
    chosen: Limit | None = None
    if endpoint not in state.exempt_endpoints and view is not None:
        if not getattr(view, _EXEMPT, False):
            chosen = getattr(view, _MARK, None) or state.default
    state.by_endpoint[endpoint] = chosen
    return chosen


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    """The core's bytes as they are: ``jsonify`` would indent them in debug mode."""
    return Response(json_bytes(body), status, headers, mimetype="application/json")


def _free() -> bool:
    """A CORS preflight, or the ``OPTIONS`` answer Flask makes by itself."""
    if request.method != "OPTIONS":
        return False
    automatic = getattr(request.url_rule, "provide_automatic_options", False)
    return bool(automatic) or is_preflight("OPTIONS", request.headers.get(PREFLIGHT_HEADER))


def _before_request() -> Response | None:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    state = _state(app)
    limit = _view_limit(state, app, request.endpoint)
    if limit is None or _free():
        return None
    try:
        charge = check(bind(state.limits, limit, state.key), state.facts)
    except StoreError:  # ON_STORE_ERROR = "raise": a 503 that says why, never a 500
        return _json(unavailable_body(), 503, dict(UNAVAILABLE_HEADERS))
    if charge is None:  # exempt, or no key: not limited, no headers
        return None
    request.environ[_CHARGE] = charge
    if charge.decision.allowed:
        return None
    return _json(denial_body(charge.decision), 429)


def _after_request(response: Response) -> Response:
    charge: Charge[Any] | None = request.environ.pop(_CHARGE, None)
    if charge is not None:
        settle(charge, response.status_code, response)
        # extend, not update: these names are ours, and update rescans the list per header
        # items, not the dict: werkzeug checks a mapping's every value for a list first
        headers = _state(current_app).limits.headers(charge.decision, charge.policy)
        response.headers.extend(headers.items())
    return response


def metrics_route(app: Flask, path: str = "/metrics") -> None:
    """Serve the Prometheus metrics at ``path`` (never rate-limited itself)."""
    from ratelimit_app.core.metrics import render_metrics

    def ratelimit_metrics() -> Response:
        body, content_type = render_metrics()
        return Response(body, content_type=content_type)

    setattr(ratelimit_metrics, _EXEMPT, True)
    app.add_url_rule(path, "ratelimit_metrics", ratelimit_metrics)
