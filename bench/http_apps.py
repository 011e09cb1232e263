"""The apps of ``bench.http_load``, built from the environment inside each server worker.

``BENCH_KIND`` names the app as ``bench.frameworks`` does (``bare``, ``ours``,
``ours-mw``, ``flask-limiter``, ``slowapi``), ``BENCH_URL`` its store and
``BENCH_COALESCE`` (``1``/``0``) the ``COALESCE`` setting of ours on FastAPI.
"""

from __future__ import annotations

import os
import warnings

from fastapi import FastAPI
from flask import Flask

from .frameworks import fastapi_app, flask_app

warnings.simplefilter("ignore")  # peers' deprecation chatter


def flask_from_env() -> Flask:
    return flask_app(os.environ["BENCH_KIND"], os.environ["BENCH_URL"])


def fastapi_from_env() -> FastAPI:
    coalesce = os.environ.get("BENCH_COALESCE", "1") == "1"
    return fastapi_app(os.environ["BENCH_KIND"], os.environ["BENCH_URL"], coalesce)
