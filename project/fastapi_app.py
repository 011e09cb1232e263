"""FastAPI demo: ``GET /api/ping`` (cost 1) and ``POST /api/upload`` (cost 3), 5 tokens, 1/s.

Run it with ``uvicorn project.fastapi_app:app`` (add ``--workers 4`` with Redis); the
environment variables are those of ``project/demo_config.py`` (``REDIS_URL``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Depends, FastAPI
from ratelimit_app.adapters.fastapi import RateLimit, RateLimiter, metrics_route

from project.demo_config import configure_logging, demo_settings


def create_app(settings: Mapping[str, Any] | None = None) -> FastAPI:
    configure_logging()
    settings = settings if settings is not None else demo_settings()
    limiter = RateLimiter(settings)
    app = FastAPI(title="ratelimit_app demo", lifespan=limiter.lifespan)
    limiter.install(app)

    @app.get("/api/ping", dependencies=[Depends(RateLimit("default"))])
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    @app.post("/api/upload", dependencies=[Depends(RateLimit("upload", cost=3))])
    def upload() -> dict[str, bool]:  # a sync endpoint, run in the threadpool
        return {"uploaded": True}

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    if settings.get("METRICS"):
        metrics_route(app)
    return app


app = create_app()
