"""Demo settings: SQLite, the admin, DRF, and one bucket per client of 5 tokens refilled
at 1/s, from which a ping takes 1 token and an upload 3 (the views name their costs).

Everything a deployment changes comes from the environment, with safe development
defaults: ``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG``, ``DJANGO_ALLOWED_HOSTS``, ``REDIS_URL``
(buckets in Redis via django-redis instead of local memory), ``RATELIMIT_CAPACITY``,
``RATELIMIT_REFILL_RATE``, ``RATELIMIT_KEY_PREFIX``, the proxy variables of
``project/demo_config.py`` (``RATELIMIT_TRUSTED_PROXIES`` ...), ``RATELIMIT_STORE`` (a
store URL such as ``redis+sentinel://...`` or ``redis+cluster://...`` instead of the
cache), ``RATELIMIT_MODE`` (``enforce`` or ``shadow``), ``RATELIMIT_METRICS`` (``1``:
Prometheus metrics at ``/metrics``; with several workers also set
``PROMETHEUS_MULTIPROC_DIR``), ``DRF_BUILTIN_RATE`` (DRF's own ScopedRateThrottle on
/api/builtin/ping, for contrast).
"""

from __future__ import annotations

import os
from pathlib import Path

from project.demo_config import django_redis_url, proxy_settings

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me-in-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "1").lower() in ("1", "true", "yes")
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "ratelimit_app",
    "project",  # the demo_user command
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS and JS) from the app itself, with DEBUG off too: see
    # STATIC_ROOT below.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "ratelimit_app.middleware.RateLimitMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB_PATH", str(BASE_DIR / "db.sqlite3")),
    }
}

REDIS_URL = django_redis_url()  # empty, or a redis://, rediss:// or unix:// URL
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1.0, "SOCKET_TIMEOUT": 1.0},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

_CAPACITY = float(os.environ.get("RATELIMIT_CAPACITY", "5"))
_RATE = float(os.environ.get("RATELIMIT_REFILL_RATE", "1.0"))

_STORE = os.environ.get("RATELIMIT_STORE", "")
RATELIMIT = {
    # the buckets: a store URL when one is given, else the cache
    **({"STORE": _STORE} if _STORE else {"CACHE": "default"}),
    "KEY_PREFIX": os.environ.get("RATELIMIT_KEY_PREFIX", "rl"),
    "ON_STORE_ERROR": "fallback",
    "MODE": os.environ.get("RATELIMIT_MODE", "enforce"),
    "METRICS": os.environ.get("RATELIMIT_METRICS", "0") == "1",
    "POLICIES": {
        "default": {"capacity": _CAPACITY, "refill_rate": _RATE},
        # failed logins per client address: 5, then one more a minute (see /api/login)
        "auth_failures": {"capacity": 5, "refill_rate": 1 / 60, "key": "ip"},
    },
    **proxy_settings(os.environ),
}

REST_FRAMEWORK = {
    "DEFAULT_THROTTLE_CLASSES": ["ratelimit_app.throttling.TokenBucketThrottle"],
    "DEFAULT_THROTTLE_RATES": {"builtin": os.environ.get("DRF_BUILTIN_RATE", "5/minute")},
    "EXCEPTION_HANDLER": "ratelimit_app.throttling.exception_handler",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # every denial is logged at INFO with policy, hashed identity, cost and retry_after
    "loggers": {"ratelimit_app": {"handlers": ["console"], "level": "INFO"}},
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# WhiteNoise serves static files from gunicorn itself, so the admin is styled with
# DJANGO_DEBUG=0 and no separate web server. The Docker image runs collectstatic into
# STATIC_ROOT at build time (served from there, compressed); elsewhere (tests, a
# checkout) WHITENOISE_USE_FINDERS finds them in the installed apps directly.
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
