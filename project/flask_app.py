"""Flask demo: ``GET /api/ping`` (cost 1) and ``POST /api/upload`` (cost 3), 5 tokens, 1/s.

Run it with ``python project/flask_app.py [--use-redis] [--port N]`` or
``gunicorn -w 4 project.flask_app:app``; see ``project/demo_config.py`` for the
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

from project.demo_config import configure_logging, demo_settings


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
    @limiter.limit("upload", cost=3)
    def upload() -> Any:
        return jsonify(uploaded=True)

    @app.get("/health")
    @limiter.exempt
    def health() -> Any:
        return jsonify(ok=True)

    limiter.init_app(app)
    if app.config["RATELIMIT"].get("METRICS"):
        metrics_route(app)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--use-redis", action="store_true", help="use REDIS_URL or localhost")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    create_app(demo_settings(use_redis=args.use_redis)).run(port=args.port)


if __name__ == "__main__":
    main()
else:
    app = create_app()
