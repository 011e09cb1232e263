"""Flask demo: one bucket per client (5 tokens, 1/s); ``GET /api/ping`` takes 1 token,
``POST /api/upload`` takes 3 from the same bucket; ``/healthz`` is never limited.

Run it with ``python3 project/flask_app.py [--use-redis] [--port 8001]``, or under
gunicorn with Redis: ``REDIS_URL=redis://localhost:6379/0 python3 -m gunicorn -w 4 -b
127.0.0.1:8001 project.flask_app:app`` (without Redis each worker keeps its own buckets,
and the extension logs a warning saying so). ``project/demo_config.py`` lists the
environment variables (``REDIS_URL``, ``RATELIMIT_CAPACITY``, ...).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask, jsonify
from ratelimit_app.adapters.flask import RateLimiter, metrics_route

from project.demo_config import UPLOAD_COST, configure_logging, demo_settings

PORT = 8001  # Django's demo has 8000, FastAPI's 8002: all three run side by side


def create_app(settings: Mapping[str, Any] | None = None) -> Flask:
    configure_logging()
    limiter = RateLimiter()
    app = Flask(__name__)
    app.config["RATELIMIT"] = dict(settings) if settings is not None else demo_settings()

    @app.get("/api/ping")
    @limiter.limit("default")
    def ping() -> Any:
        return jsonify(pong=True)

    @app.post("/api/upload")
    @limiter.limit("default", cost=UPLOAD_COST)
    def upload() -> Any:
        return jsonify(uploaded=True)

    @app.get("/healthz")
    @limiter.exempt
    def healthz() -> Any:
        return jsonify(ok=True)

    limiter.init_app(app)
    if app.config["RATELIMIT"].get("METRICS"):
        metrics_route(app)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--use-redis", action="store_true", help="use REDIS_URL or localhost")
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args(argv)
    create_app(demo_settings(use_redis=args.use_redis)).run(port=args.port)


if __name__ == "__main__":
    main()
else:
    app = create_app()
