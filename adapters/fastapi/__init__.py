"""FastAPI / Starlette glue: a ``RateLimit`` dependency and a pure ASGI middleware.

``RateLimiter(settings)`` parses the settings dict (the Django shape plus the storage
keys of ``ratelimit_app.core.stores.from_url``) when it is built. ``install(app)`` gives
the app its store and limiters (``app.state.ratelimit``) and registers the handler that
renders a 429 or 503 with the core's body. The store connects lazily, on the first
decision in each event loop, so an app works without a running lifespan
(``TestClient(app)`` outside ``with``, httpx's ``ASGITransport``, an app with a lifespan
of its own). ``lifespan`` adds what only a start-up can give: it checks every
``RateLimit`` dependency and ``RateLimitMiddleware`` of the app against the policies
before the first request, and closes the Redis pool at shutdown::

    limiter = RateLimiter({"STORAGE_URL": "redis://localhost:6379/0", "POLICIES": {...}})
    app = FastAPI(lifespan=limiter.lifespan)
    limiter.install(app)

    @app.post("/upload", dependencies=[Depends(RateLimit("default", cost=3))])
    def upload() -> dict[str, str]: ...

Without a lifespan the same checks run at the app's first limited request. With
``ON_STORE_ERROR="raise"`` a failed store is a 503 with ``Retry-After``, never a 500.
``install`` also lists the 429 (and under ``raise`` the 503) among the responses of every
limited route of the app's OpenAPI schema.

The default identity is the ASGI client address, with a proxy header believed only
through ``TRUSTED_PROXIES`` / ``TRUSTED_PROXY_COUNT`` (every line of it). Note that
uvicorn's ``--proxy-headers`` (on by default for 127.0.0.1) rewrites that address before
the app sees it: run uvicorn with ``--no-proxy-headers`` and let the limiter read it.

``RateLimit`` and ``RateLimitMiddleware`` take a ``key``, ``exempt_when``,
``deduct_when`` and ``charge_on_status`` of their own (``ratelimit_app.core``); callables
of the request receive the ``HTTPConnection`` and may be async. ``user`` (a callable of
the connection) gives the user for the ``user`` keys and ``EXEMPT`` (default:
``scope["user"]``, set by Starlette's ``AuthenticationMiddleware``). Refunds are made
after the response by a small ASGI middleware ``install`` adds; ``deduct_when`` receives
a ``Response`` with the status and headers (not the body). A CORS preflight costs
nothing, and a 405 is refunded.

The package: ``limiter.py`` (``RateLimiter``, ``metrics_route``), ``dependency.py``
(``RateLimit``), ``middleware.py`` (``RateLimitMiddleware`` and the refunds),
``running.py`` (an app's state while it runs), ``answers.py`` (the 429 and 503 and their
OpenAPI documentation).
"""

from .answers import RateLimitExceeded, RateLimitUnavailable, rate_limit_exceeded_handler
from .dependency import RateLimit
from .limiter import RateLimiter, metrics_route
from .middleware import RateLimitMiddleware

__all__ = [
    "RateLimit",
    "RateLimitExceeded",
    "RateLimitMiddleware",
    "RateLimitUnavailable",
    "RateLimiter",
    "metrics_route",
    "rate_limit_exceeded_handler",
]
