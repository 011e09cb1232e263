"""FastAPI demo: one bucket per client (5 tokens, 1/s); ``GET /api/ping`` takes 1 token,
``POST /api/upload`` takes 3 from the same bucket; ``/healthz`` is never limited.

Run it with ``python3 -m uvicorn project.fastapi_app:app --port 8002
--no-proxy-headers`` (add ``--workers 4`` with ``REDIS_URL`` set: without Redis each
worker keeps its own buckets, and the limiter logs a warning saying so). uvicorn comes
with its standard extras (httptools, uvloop), the fast HTTP path. The environment
variables are those of ``project/demo_config.py`` (``REDIS_URL``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Depends, FastAPI
from ratelimit_app.adapters.fastapi import RateLimit, RateLimiter, metrics_route

from project.demo_config import UPLOAD_COST, configure_logging, demo_settings


def create_app(settings: Mapping[str, Any] | None = None) -> FastAPI:
    configure_logging()
    settings = settings if settings is not None else demo_settings()
    limiter = RateLimiter(settings)
    app = FastAPI(title="ratelimit_app demo", lifespan=limiter.lifespan)
    limiter.install(app)

    @app.get("/api/ping", dependencies=[Depends(RateLimit("default"))])
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    @app.post("/api/upload", dependencies=[Depends(RateLimit("default", cost=UPLOAD_COST))])
    def upload() -> dict[str, bool]:  # a sync endpoint, run in the threadpool
        return {"uploaded": True}

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    if settings.get("METRICS"):
        metrics_route(app)
    return app


app = create_app()
